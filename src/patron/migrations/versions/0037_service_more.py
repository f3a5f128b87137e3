"""Risk review: the device a mall redemption came from, for the per-device velocity rule.

Revision ID: 0037_service_more
Revises: 0032_analytics_more
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037_service_more"
down_revision = "0036_campaigns_ugc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mall_redemptions") as batch:
        batch.add_column(sa.Column("device_id", sa.String(length=64), nullable=True))
    op.create_index("ix_mall_redemptions_device", "mall_redemptions", ["device_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_mall_redemptions_device", table_name="mall_redemptions")
    with op.batch_alter_table("mall_redemptions") as batch:
        batch.drop_column("device_id")
