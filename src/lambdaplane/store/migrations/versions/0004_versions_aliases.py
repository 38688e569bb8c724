"""versions and aliases: the per-function version counter and the alias table

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Version numbers are never reused, even after a version is deleted: the counter
    # lives on the function, not in the versions' rows.
    with op.batch_alter_table("functions") as batch:
        batch.add_column(sa.Column("last_version", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "function_aliases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "function_id",
            sa.Integer,
            sa.ForeignKey("functions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("function_version", sa.String(32), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("routing", sa.JSON, nullable=False),  # {version: weight}
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.UniqueConstraint("function_id", "name", name="uq_function_aliases"),
    )


def downgrade() -> None:
    op.drop_table("function_aliases")
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("last_version")
