"""event source mappings and their pollers' checkpoints

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "event_source_mappings",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=True),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(2048), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.String(256), nullable=False),
        sa.Column("last_processing_result", sa.String(1024), nullable=True),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revision", sa.String(36), nullable=False),
    )
    op.create_index(
        "ix_esm_function", "event_source_mappings", ["account_id", "region", "function_name"]
    )
    op.create_index(
        "ix_esm_source", "event_source_mappings", ["account_id", "region", "source_key"]
    )
    op.create_table(
        "esm_checkpoints",
        sa.Column("mapping_uuid", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("esm_checkpoints")
    op.drop_index("ix_esm_source", "event_source_mappings")
    op.drop_index("ix_esm_function", "event_source_mappings")
    op.drop_table("event_source_mappings")
