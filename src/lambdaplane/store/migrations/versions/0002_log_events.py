"""log events captured from execution environments

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "log_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("log_group", sa.String(512), nullable=False),
        sa.Column("log_stream", sa.String(512), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("ingestion_time", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_log_events_stream", "log_events", ["log_group", "log_stream", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_log_events_stream", "log_events")
    op.drop_table("log_events")
