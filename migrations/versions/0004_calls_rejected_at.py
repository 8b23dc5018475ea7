"""calls.rejected_at: when an agent last rejected the call

A call rejected by every agent who could take it is offered again to one of them once
TELLONCE_REOFFER_AFTER_S have passed since the last rejection (app/routing/service.py, match).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rejected_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("rejected_at")
