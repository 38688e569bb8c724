"""reserved concurrency: at most one reservation per function, gone with the function

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "function_concurrency",
        sa.Column(
            "function_id",
            sa.Integer,
            sa.ForeignKey("functions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("reserved", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("function_concurrency")
