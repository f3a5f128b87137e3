"""Orders, order lines, payments, returns and per-rule budget usage.

Revision ID: 0004_orders
Revises: 0003_catalog
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_orders"
down_revision = "0003_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "rule_budget_usage",
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("points_used", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_rule_budget_usage")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("store_code", sa.String(length=32), nullable=True),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("list_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_used", sa.BigInteger(), nullable=False),
        sa.Column("points_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("growth_earned", sa.BigInteger(), nullable=False),
        sa.Column("welcome_bonus", sa.BigInteger(), nullable=False),
        sa.Column("first_purchase", sa.Boolean(), nullable=False),
        sa.Column("earn_posting_id", sa.BigInteger(), nullable=True),
        sa.Column("spend_posting_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "rules_trace", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "total_fen >= 0 AND paid_fen >= 0 AND points_fen >= 0", name=op.f("ck_orders_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_orders_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("source", "external_id", name="uq_orders_source_external_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_member_day", ["member_id", "business_date"], unique=False)
        batch_op.create_index("ix_orders_member_time", ["member_id", "ordered_at"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_fen", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("returned_quantity", sa.Integer(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "quantity > 0 AND returned_quantity <= quantity", name=op.f("ck_order_lines_quantity")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_no", name=op.f("uq_order_lines_order_id")),
    )
    op.create_table(
        "order_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_payments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_payments")),
    )
    op.create_table(
        "order_returns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_returned", sa.BigInteger(), nullable=False),
        sa.Column("points_clawed", sa.BigInteger(), nullable=False),
        sa.Column("growth_clawed", sa.BigInteger(), nullable=False),
        sa.Column("to_debt", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_order_returns_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_returns_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_returns")),
        sa.UniqueConstraint("order_id", "external_id", name="uq_order_returns_order_external_id"),
    )
    with op.batch_alter_table("order_returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_returns_member_id"), ["member_id"], unique=False)

    op.create_table(
        "order_return_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "return_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_returned", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["order_returns.id"],
            name=op.f("fk_order_return_lines_return_id_order_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_return_lines")),
    )


def downgrade() -> None:

    op.drop_table("order_return_lines")
    with op.batch_alter_table("order_returns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_returns_member_id"))

    op.drop_table("order_returns")
    op.drop_table("order_payments")
    op.drop_table("order_lines")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_member_time")
        batch_op.drop_index("ix_orders_member_day")

    op.drop_table("orders")
    op.drop_table("rule_budget_usage")
