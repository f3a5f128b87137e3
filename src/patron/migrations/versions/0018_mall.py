"""The points mall: gifts, stock per warehouse with its append-only movement ledger,
redemption orders and codes, flash sales, lottery pools, prizes and draws, purchase requests.

Revision ID: 0018_mall
Revises: 0016_events
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_mall"
down_revision = "0016_events"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("mall_stock_movements", "mall_lottery_draws")


def append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION patron_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION patron_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def upgrade() -> None:
    op.create_table(
        "mall_gifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("cash_fen", sa.BigInteger(), nullable=False),
        sa.Column("min_tier", sa.String(length=32), nullable=True),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sale_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("limit_per_member", sa.Integer(), nullable=True),
        sa.Column("limit_window", sa.String(length=16), nullable=False),
        sa.Column("image_key", sa.String(length=200), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cash_fen >= 0", name=op.f("ck_mall_gifts_cash_not_negative")),
        sa.CheckConstraint("points > 0", name=op.f("ck_mall_gifts_points_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_gifts")),
        sa.UniqueConstraint("code", name=op.f("uq_mall_gifts_code")),
    )
    op.create_index(op.f("ix_mall_gifts_category"), "mall_gifts", ["category"], unique=False)
    op.create_table(
        "mall_lottery_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cost_points", sa.Integer(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cost_points > 0", name=op.f("ck_mall_lottery_pools_cost_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_lottery_pools")),
        sa.UniqueConstraint("code", name=op.f("uq_mall_lottery_pools_code")),
    )
    op.create_table(
        "mall_flash_sales",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "granted >= 0 AND granted <= quantity",
            name=op.f("ck_mall_flash_sales_granted_within_quantity"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_mall_flash_sales_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["gift_id"], ["mall_gifts.id"], name=op.f("fk_mall_flash_sales_gift_id_mall_gifts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_flash_sales")),
    )
    op.create_index(
        op.f("ix_mall_flash_sales_gift_id"), "mall_flash_sales", ["gift_id"], unique=False
    )
    op.create_table(
        "mall_lottery_prizes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("award_points", sa.Integer(), nullable=False),
        sa.Column("ppm", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("is_fallback", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "ppm >= 0 AND ppm <= 1000000", name=op.f("ck_mall_lottery_prizes_ppm_range")
        ),
        sa.CheckConstraint(
            "stock IS NULL OR stock >= 0", name=op.f("ck_mall_lottery_prizes_stock_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["mall_lottery_pools.id"],
            name=op.f("fk_mall_lottery_prizes_pool_id_mall_lottery_pools"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_lottery_prizes")),
    )
    op.create_index(
        "ix_mall_lottery_prizes_pool", "mall_lottery_prizes", ["pool_id", "version"], unique=False
    )
    op.create_table(
        "mall_stock",
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=16), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_mall_stock_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_mall_stock_reserved_within_on_hand")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_mall_stock_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["gift_id"], ["mall_gifts.id"], name=op.f("fk_mall_stock_gift_id_mall_gifts")
        ),
        sa.PrimaryKeyConstraint("gift_id", "warehouse", name=op.f("pk_mall_stock")),
    )
    op.create_table(
        "mall_stock_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("reserved_delta", sa.Integer(), nullable=False),
        sa.Column("redemption_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gift_id"], ["mall_gifts.id"], name=op.f("fk_mall_stock_movements_gift_id_mall_gifts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_stock_movements")),
    )
    op.create_index(
        op.f("ix_mall_stock_movements_redemption_id"),
        "mall_stock_movements",
        ["redemption_id"],
        unique=False,
    )
    op.create_index(
        "ix_mall_stock_movements_stock",
        "mall_stock_movements",
        ["gift_id", "warehouse"],
        unique=False,
    )
    op.create_table(
        "mall_lottery_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("pool_version", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("drawn_prize_id", sa.Integer(), nullable=False),
        sa.Column("prize_id", sa.Integer(), nullable=False),
        sa.Column("roll", sa.Integer(), nullable=False),
        sa.Column("spend_posting_id", sa.BigInteger(), nullable=False),
        sa.Column("award_posting_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["drawn_prize_id"],
            ["mall_lottery_prizes.id"],
            name=op.f("fk_mall_lottery_draws_drawn_prize_id_mall_lottery_prizes"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_mall_lottery_draws_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["mall_lottery_pools.id"],
            name=op.f("fk_mall_lottery_draws_pool_id_mall_lottery_pools"),
        ),
        sa.ForeignKeyConstraint(
            ["prize_id"],
            ["mall_lottery_prizes.id"],
            name=op.f("fk_mall_lottery_draws_prize_id_mall_lottery_prizes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_lottery_draws")),
        sa.UniqueConstraint(
            "member_id",
            "pool_id",
            "business_date",
            "seq",
            name=op.f("uq_mall_lottery_draws_member_id"),
        ),
    )
    op.create_index(
        "ix_mall_lottery_draws_pool",
        "mall_lottery_draws",
        ["pool_id", "pool_version"],
        unique=False,
    )
    op.create_table(
        "mall_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("flash_sale_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("cash_fen", sa.BigInteger(), nullable=False),
        sa.Column("warehouse", sa.String(length=16), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("store_code", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spend_posting_id", sa.BigInteger(), nullable=False),
        sa.Column("reversal_posting_id", sa.BigInteger(), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_store", sa.String(length=32), nullable=True),
        sa.Column("verified_by", sa.String(length=120), nullable=True),
        sa.Column("carrier", sa.String(length=32), nullable=True),
        sa.Column("tracking_no", sa.String(length=64), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_mall_redemptions_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["flash_sale_id"],
            ["mall_flash_sales.id"],
            name=op.f("fk_mall_redemptions_flash_sale_id_mall_flash_sales"),
        ),
        sa.ForeignKeyConstraint(
            ["gift_id"], ["mall_gifts.id"], name=op.f("fk_mall_redemptions_gift_id_mall_gifts")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_mall_redemptions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_redemptions")),
        sa.UniqueConstraint("code", name=op.f("uq_mall_redemptions_code")),
    )
    op.create_index(
        op.f("ix_mall_redemptions_flash_sale_id"),
        "mall_redemptions",
        ["flash_sale_id"],
        unique=False,
    )
    op.create_index(
        "ix_mall_redemptions_member_gift",
        "mall_redemptions",
        ["member_id", "gift_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mall_redemptions_status"), "mall_redemptions", ["status"], unique=False
    )
    op.create_table(
        "mall_purchase_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("available_at_request", sa.Integer(), nullable=False),
        sa.Column("forecast", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "quantity > 0", name=op.f("ck_mall_purchase_requests_quantity_positive")
        ),
        sa.ForeignKeyConstraint(
            ["gift_id"],
            ["mall_gifts.id"],
            name=op.f("fk_mall_purchase_requests_gift_id_mall_gifts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_purchase_requests")),
    )
    op.create_index(
        op.f("ix_mall_purchase_requests_gift_id"),
        "mall_purchase_requests",
        ["gift_id"],
        unique=False,
    )
    for table in APPEND_ONLY_TABLES:
        append_only(table)


def downgrade() -> None:
    op.drop_table("mall_purchase_requests")
    op.drop_table("mall_redemptions")
    op.drop_table("mall_lottery_draws")
    op.drop_table("mall_stock_movements")
    op.drop_table("mall_stock")
    op.drop_table("mall_lottery_prizes")
    op.drop_table("mall_flash_sales")
    op.drop_table("mall_lottery_pools")
    op.drop_table("mall_gifts")
