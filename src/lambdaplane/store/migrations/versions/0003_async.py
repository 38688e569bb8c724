"""asynchronous invocation: the durable event queue and EventInvokeConfig

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "async_events",
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
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_async_events_due", "async_events", ["next_attempt_at"])
    op.create_table(
        "event_invoke_configs",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("function_name", sa.String(64), primary_key=True),
        sa.Column("qualifier", sa.String(128), primary_key=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_invoke_configs")
    op.drop_index("ix_async_events_due", "async_events")
    op.drop_table("async_events")
