"""provisioned concurrency configs: one per published version or alias of a function

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "provisioned_concurrency_configs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "function_id",
            sa.Integer,
            sa.ForeignKey("functions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("qualifier", sa.String(128), nullable=False),  # a version number or an alias
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.UniqueConstraint("function_id", "qualifier", name="uq_provisioned_concurrency_configs"),
    )


def downgrade() -> None:
    op.drop_table("provisioned_concurrency_configs")
