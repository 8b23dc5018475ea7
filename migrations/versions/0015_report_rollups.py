"""report_rollups, and calls.rolled_up and the repeat columns: the reports read roll-ups

The experience report over a month read every call of it; it now reads a row per queue and
hour, or per agent and hour or day, for the calls that finished, and the few others as they are
(app/reports/rollup.py). Calls already in the database are rolled up by the running server,
a batch at a time; until then the reports read them as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("start", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollups")),
        sa.UniqueConstraint(
            "dimension",
            "grain",
            "start",
            "key",
            name=op.f("uq_report_rollups_dimension"),
        ),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rolled_up", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("repeats", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        for name in ("prev_repeat_at", "prev_repeat_in_queue_at", "prev_repeat_of_agent_at"):
            batch_op.add_column(sa.Column(name, app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_calls_not_rolled_up",
            ["first_queued_at"],
            unique=False,
            sqlite_where=sa.text("rolled_up = 0"),
            postgresql_where=sa.text("rolled_up = false"),
        )
        batch_op.create_index(
            "ix_calls_finished_not_rolled_up",
            ["ended_at"],
            unique=False,
            sqlite_where=sa.text("rolled_up = 0"),
            postgresql_where=sa.text("rolled_up = false"),
        )
        batch_op.create_index(
            "ix_calls_repeats",
            [
                "first_queued_at",
                "queue",
                "agent_id",
                "prev_repeat_at",
                "prev_repeat_in_queue_at",
                "prev_repeat_of_agent_at",
            ],
            unique=False,
            sqlite_where=sa.text("repeats = 1"),
            postgresql_where=sa.text("repeats = true"),
        )
        batch_op.create_index("ix_calls_caller_number", ["caller_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_caller_number")
        batch_op.drop_index("ix_calls_repeats")
        batch_op.drop_index("ix_calls_finished_not_rolled_up")
        batch_op.drop_index("ix_calls_not_rolled_up")
        for name in ("prev_repeat_of_agent_at", "prev_repeat_in_queue_at", "prev_repeat_at"):
            batch_op.drop_column(name)
        batch_op.drop_column("repeats")
        batch_op.drop_column("rolled_up")
    op.drop_table("report_rollups")
