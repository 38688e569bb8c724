"""log groups and streams for the CloudWatch Logs API, and a time index on log events

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "log_groups",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("log_group_class", sa.String(32), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "log_streams",
        sa.Column("log_group", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("first_event", sa.BigInteger, nullable=True),
        sa.Column("last_event", sa.BigInteger, nullable=True),
        sa.Column("last_ingestion", sa.BigInteger, nullable=True),
    )
    # Streams of groups that existed before this revision: their events are already stored.
    op.execute(
        "INSERT INTO log_groups (name, created_at, retention_days, log_group_class, stored_bytes) "
        "SELECT log_group, MIN(ingestion_time), NULL, 'STANDARD', SUM(LENGTH(message)) "
        "FROM log_events GROUP BY log_group"
    )
    op.execute(
        "INSERT INTO log_streams "
        "(log_group, name, created_at, first_event, last_event, last_ingestion) "
        "SELECT log_group, log_stream, MIN(ingestion_time), MIN(timestamp), MAX(timestamp), "
        "MAX(ingestion_time) FROM log_events GROUP BY log_group, log_stream"
    )
    op.create_index("ix_log_events_group_time", "log_events", ["log_group", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_log_events_group_time", "log_events")
    op.drop_table("log_streams")
    op.drop_table("log_groups")
