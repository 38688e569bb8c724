"""resource-based policies: a function's permission statements per qualifier

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "function_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "function_id",
            sa.Integer,
            sa.ForeignKey("functions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("qualifier", sa.String(128), nullable=False),  # $LATEST: unqualified
        sa.Column("statements", sa.JSON, nullable=False),  # in the order they were added
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.UniqueConstraint("function_id", "qualifier", name="uq_function_policies"),
    )


def downgrade() -> None:
    op.drop_table("function_policies")
