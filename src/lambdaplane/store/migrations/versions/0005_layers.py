"""layers: layer names with their version counter, and layer versions

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_layers_name"),
    )
    op.create_table(
        "layer_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "layer_id",
            sa.Integer,
            sa.ForeignKey("layers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.BigInteger, nullable=False),
        sa.Column("unzipped_size", sa.BigInteger, nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("license_info", sa.String(512), nullable=True),
        sa.Column("compatible_runtimes", sa.JSON, nullable=True),
        sa.Column("compatible_architectures", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("policy_revision", sa.String(36), nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.UniqueConstraint("layer_id", "version", name="uq_layer_versions"),
    )


def downgrade() -> None:
    op.drop_table("layer_versions")
    op.drop_table("layers")
