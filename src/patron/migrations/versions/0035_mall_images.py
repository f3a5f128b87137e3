"""Mall: a gift's images (several per gift, uploaded through the API), returns of shipped
gifts, and at most one open purchase request per gift and warehouse.

Revision ID: 0035_mall_images
Revises: 0032_analytics_more
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035_mall_images"
down_revision = "0034_ledger_batch"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mall_gift_images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gift_id", sa.Integer(), sa.ForeignKey("mall_gifts.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("gift_id", "key", name="uq_mall_gift_images_gift_id"),
    )
    # the image a gift already points to becomes its first listed image
    op.execute(
        "INSERT INTO mall_gift_images (gift_id, key, created_by, created_at) "
        "SELECT id, image_key, 'migration', updated_at FROM mall_gifts "
        "WHERE image_key IS NOT NULL"
    )
    with op.batch_alter_table("mall_redemptions") as batch:
        batch.add_column(sa.Column("returned_at", TS, nullable=True))
        batch.add_column(sa.Column("return_reason", sa.String(200), nullable=True))
    op.create_index(
        "ux_mall_purchase_requests_open",
        "mall_purchase_requests",
        ["gift_id", "warehouse"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ux_mall_purchase_requests_open", table_name="mall_purchase_requests")
    with op.batch_alter_table("mall_redemptions") as batch:
        batch.drop_column("return_reason")
        batch.drop_column("returned_at")
    op.drop_table("mall_gift_images")
