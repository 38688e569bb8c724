"""usage: one row per invocation with its billed duration, memory, architecture and storage

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("billed_ms", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("architecture", sa.String(16), nullable=False),
        sa.Column("ephemeral_mb", sa.Integer, nullable=False),
    )
    op.create_index("ix_usage_records_time", "usage_records", ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_time", "usage_records")
    op.drop_table("usage_records")
