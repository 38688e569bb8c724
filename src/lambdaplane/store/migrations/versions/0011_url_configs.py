"""function URL configs: one per function ($LATEST) or alias, each with a stable url id

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "function_url_configs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "function_id",
            sa.Integer,
            sa.ForeignKey("functions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("qualifier", sa.String(128), nullable=False),  # $LATEST or an alias
        sa.Column("url_id", sa.String(32), nullable=False),
        sa.Column("auth_type", sa.String(16), nullable=False),
        sa.Column("invoke_mode", sa.String(16), nullable=True),  # None: never set (BUFFERED)
        sa.Column("cors", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.UniqueConstraint("function_id", "qualifier", name="uq_function_url_configs"),
        sa.UniqueConstraint("url_id", name="uq_function_url_configs_url_id"),
    )


def downgrade() -> None:
    op.drop_table("function_url_configs")
