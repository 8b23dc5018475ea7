"""transfers.by_id: the supervisor who moved a call

A supervisor's assignment, reassignment or move to another queue is a row of `transfers`, like
an agent's transfer, with the supervisor in by_id, so the call's trail says who moved it, when,
and to whom.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_transfers_by_id_users"), "users", ["by_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_transfers_by_id_users"), type_="foreignkey")
        batch_op.drop_column("by_id")
