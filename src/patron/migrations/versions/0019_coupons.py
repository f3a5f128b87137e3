"""Coupons: templates, the coupons in members' wallets, and each coupon's status history.

Revision ID: 0019_coupons
Revises: 0018_mall
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019_coupons"
down_revision = "0018_mall"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rules", Json, nullable=False),
        sa.Column("total_quantity", sa.BigInteger(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("issued_count", sa.BigInteger(), nullable=False),
        sa.Column("points_price", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.CheckConstraint(
            "total_quantity IS NULL OR issued_count <= total_quantity",
            name=op.f("ck_coupon_templates_quantity"),
        ),
        sa.CheckConstraint(
            "issued_count >= 0 AND per_member_limit >= 1", name=op.f("ck_coupon_templates_counts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_templates_code")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", BigId, nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("issue_key", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", Time, nullable=False),
        sa.Column("valid_until", Time, nullable=False),
        sa.Column("issued_at", Time, nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", BigId, nullable=True),
        sa.Column("redeemed_at", Time, nullable=True),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("allocation", Json, nullable=True),
        sa.Column("reminded_at", Time, nullable=True),
        sa.CheckConstraint(
            "(status = 'redeemed') = (order_id IS NOT NULL)",
            name=op.f("ck_coupons_redeemed_has_order"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_coupons_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint("template_id", "member_id", "issue_key", name="uq_coupons_issue"),
    )
    op.create_index("ix_coupons_member_status", "coupons", ["member_id", "status", "valid_until"])
    op.create_index("ix_coupons_status_until", "coupons", ["status", "valid_until"])
    op.create_index("ix_coupons_order", "coupons", ["order_id"])
    op.create_table(
        "coupon_history",
        sa.Column("id", BigId, nullable=False),
        sa.Column("coupon_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("at", Time, nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupon_history_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_history")),
    )
    op.create_index("ix_coupon_history_coupon", "coupon_history", ["coupon_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_coupon_history_coupon", table_name="coupon_history")
    op.drop_table("coupon_history")
    op.drop_index("ix_coupons_order", table_name="coupons")
    op.drop_index("ix_coupons_status_until", table_name="coupons")
    op.drop_index("ix_coupons_member_status", table_name="coupons")
    op.drop_table("coupons")
    op.drop_table("coupon_templates")
