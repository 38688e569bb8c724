"""async events keep the caller's X-Amzn-Trace-Id, so their runs continue its trace

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("async_events") as batch:
        batch.add_column(sa.Column("trace_header", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("async_events") as batch:
        batch.drop_column("trace_header")
