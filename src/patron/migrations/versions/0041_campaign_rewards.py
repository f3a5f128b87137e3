"""Campaigns: an action that earns may also give a coupon (a template's code).

Revision ID: 0041_campaign_rewards
Revises: 0039_mall_returned_flash
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0041_campaign_rewards"
down_revision = "0039_mall_returned_flash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_actions") as batch:
        batch.add_column(sa.Column("coupon_template", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_actions") as batch:
        batch.drop_column("coupon_template")
