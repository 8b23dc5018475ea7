"""Remembering how calls went: effort figures, repeat callers, "asked again", promises

calls gains offers, escalations and effort_score (what a call cost the caller), repeat_of and
prefer_agent_id (a second call about the same intent within 7 days, and the agent who handled
the first). asked_again records each time an agent had to ask for something the phone tree had
collected; promises, what was promised to a customer at a follow_up wrap, and when it was kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("offers", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("escalations", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(sa.Column("effort_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("repeat_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prefer_agent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_repeat_of_calls"), "calls", ["repeat_of"], ["id"],
            ondelete="SET NULL",
        )  # fmt: skip
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_prefer_agent_id_users"), "users", ["prefer_agent_id"], ["id"],
            ondelete="SET NULL",
        )  # fmt: skip
    op.create_table(
        "asked_again",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_asked_again_agent_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_asked_again_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asked_again")),
    )  # fmt: skip
    with op.batch_alter_table("asked_again", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asked_again_call_id"), ["call_id"], unique=False)
    op.create_table(
        "promises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("made_by_id", sa.Integer(), nullable=True),
        sa.Column("made_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kept_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("kept_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_promises_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_promises_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kept_by_id"], ["users.id"], name=op.f("fk_promises_kept_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["made_by_id"], ["users.id"], name=op.f("fk_promises_made_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promises")),
    )  # fmt: skip
    with op.batch_alter_table("promises", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promises_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_promises_kept_at_due", ["kept_at", "due"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("promises", schema=None) as batch_op:
        batch_op.drop_index("ix_promises_kept_at_due")
        batch_op.drop_index(batch_op.f("ix_promises_customer_id"))
    op.drop_table("promises")
    with op.batch_alter_table("asked_again", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asked_again_call_id"))
    op.drop_table("asked_again")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_calls_prefer_agent_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_calls_repeat_of_calls"), type_="foreignkey")
        batch_op.drop_column("prefer_agent_id")
        batch_op.drop_column("repeat_of")
        batch_op.drop_column("effort_score")
        batch_op.drop_column("escalations")
        batch_op.drop_column("offers")
