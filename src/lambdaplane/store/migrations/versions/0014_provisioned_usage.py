"""billing by time: usage rows say whether a provisioned environment ran them and whether
they were a SnapStart restore's first, and provisioned_usage holds the billed periods of
provisioned concurrency configurations and SnapStart snapshots

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(
            sa.Column("provisioned", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("restored", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "provisioned_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, server_default="provisioned"),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("architecture", sa.String(16), nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_provisioned_usage_function",
        "provisioned_usage",
        ["account_id", "region", "function_name"],
    )


def downgrade() -> None:
    op.drop_index("ix_provisioned_usage_function", "provisioned_usage")
    op.drop_table("provisioned_usage")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("restored")
        batch.drop_column("provisioned")
