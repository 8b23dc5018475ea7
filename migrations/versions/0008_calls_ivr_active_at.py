"""calls.ivr_active_at: the phone tree's last word about a call

A call still in the phone tree after TELLONCE_IVR_SILENCE_S without a request from it (its
creation, a step, a verification) is abandoned by the routing loop: the tree that held it went
away without hanging up. The index on (state, ivr_active_at) serves that sweep and its next
deadline. Calls in the tree now get their last step's time, else their creation's.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("created_at", app.db.UTCDateTime(timezone=True)),
    sa.column("ivr_active_at", app.db.UTCDateTime(timezone=True)),
)
steps = sa.table(
    "ivr_steps",
    sa.column("call_id", sa.Integer),
    sa.column("at", app.db.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ivr_active_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_calls_state_ivr_active_at", ["state", "ivr_active_at"], unique=False
        )
    last_step = (
        sa.select(sa.func.max(steps.c.at)).where(steps.c.call_id == calls.c.id).scalar_subquery()
    )
    op.get_bind().execute(
        sa.update(calls)
        .where(calls.c.state == "ivr")
        .values(ivr_active_at=sa.func.coalesce(last_step, calls.c.created_at))
    )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_state_ivr_active_at")
        batch_op.drop_column("ivr_active_at")
