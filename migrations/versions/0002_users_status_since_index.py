"""users: one index on (status, status_since, id) instead of one on status

Routing picks "the longest idle available agent with the skill": with this index the database
walks available agents oldest first and stops at the first one with the skill, instead of
reading and sorting every available agent for every call.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_status_since", ["status", "status_since", "id"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_users_status"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_status"), ["status"], unique=False)
        batch_op.drop_index("ix_users_status_since")
