"""calls.waited_s and calls.waiting_since: one definition of a caller's wait

A caller's wait is the time queued before each answer, summed over every queue the call
waited in. waited_s holds the periods that ended (at an answer, or when the caller hung up);
waiting_since, while the call waits, is now minus the whole wait so far, so that the longest
wait of a queue is one min() (app/calls/context.py, wait_s).

Calls already in the database get what their columns allow: the first wait (first queued to
first answered, or to the hang-up), and a waiting call's wait from when it was last queued.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("queued_at", app.db.UTCDateTime(timezone=True)),
    sa.column("first_queued_at", app.db.UTCDateTime(timezone=True)),
    sa.column("first_connected_at", app.db.UTCDateTime(timezone=True)),
    sa.column("hungup_at", app.db.UTCDateTime(timezone=True)),
    sa.column("waited_s", sa.Float),
    sa.column("waiting_since", app.db.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("waited_s", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("waiting_since", app.db.UTCDateTime(timezone=True), nullable=True)
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            calls.c.id,
            calls.c.state,
            calls.c.queued_at,
            calls.c.first_queued_at,
            calls.c.first_connected_at,
            calls.c.hungup_at,
        ).where(calls.c.first_queued_at.is_not(None))
    ).all()
    for call_id, state, queued_at, first_queued_at, first_connected_at, hungup_at in rows:
        if state in ("queued", "offered"):
            values = {"waiting_since": queued_at}
        else:
            until = first_connected_at or hungup_at
            if until is None:
                continue
            values = {"waited_s": max(0.0, (until - first_queued_at).total_seconds())}
        bind.execute(sa.update(calls).where(calls.c.id == call_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("waited_s")
