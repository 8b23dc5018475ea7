"""calls.callback_number, callback_requested_at, called_back_at: callbacks that keep the place

A caller who has waited long is offered a callback by the phone tree; the call stays queued
with its place, and the agent who takes it phones the number given.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_number", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("callback_requested_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("called_back_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("called_back_at")
        batch_op.drop_column("callback_requested_at")
        batch_op.drop_column("callback_number")
