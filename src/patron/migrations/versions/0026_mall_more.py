"""The mall, continued: flash sales an operator closed early.

Revision ID: 0026_mall_more
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_mall_more"
down_revision = "0024_segments"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mall_flash_sales") as batch:
        batch.add_column(sa.Column("closed_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mall_flash_sales") as batch:
        batch.drop_column("closed_at")
