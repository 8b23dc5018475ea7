"""events: seq is SQLite's rowid, and `at` is no longer indexed

Every commit that writes an event wrote a page of each of the events table's indexes. On SQLite
a BIGINT primary key is an index beside the rowid; declared INTEGER it is the rowid itself. The
index on `at` served only the pruning of old events, which now goes oldest first by seq and
stops at the first event young enough to keep (app/realtime/hub.py, prune).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_at"))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a column's type in place: batch mode copies the table.
        with op.batch_alter_table("events", schema=None, recreate="always") as batch_op:
            batch_op.alter_column(
                "seq", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("events", schema=None, recreate="always") as batch_op:
            batch_op.alter_column(
                "seq", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
            )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_at"), ["at"], unique=False)
