"""exception_marks: the exceptions report's groups a supervisor marked "add to the phone tree"

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exception_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terms_key", sa.String(length=400), nullable=False),
        sa.Column("marked_by_id", sa.Integer(), nullable=True),
        sa.Column("marked_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["marked_by_id"],
            ["users.id"],
            name=op.f("fk_exception_marks_marked_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exception_marks")),
        sa.UniqueConstraint("terms_key", name=op.f("uq_exception_marks_terms_key")),
    )


def downgrade() -> None:
    op.drop_table("exception_marks")
