"""The mall, continued: flash sales an operator closed early; suppliers with agreements and
quotes, each gift's preferred and backup supplier, the supplier of a purchase request; a
gift's base price and the history of its price (dynamic markdowns of slow movers).

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
    op.create_table(
        "mall_suppliers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("contact", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "mall_supplier_agreements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("supplier_id", sa.Integer(), sa.ForeignKey("mall_suppliers.id"), nullable=False),
        sa.Column("ref", sa.String(40), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("terms", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("valid_to >= valid_from", name="valid_window"),
        sa.UniqueConstraint("supplier_id", "ref"),
    )
    op.create_index(
        "ix_mall_supplier_agreements_supplier_id", "mall_supplier_agreements", ["supplier_id"]
    )
    op.create_table(
        "mall_supplier_quotes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("supplier_id", sa.Integer(), sa.ForeignKey("mall_suppliers.id"), nullable=False),
        sa.Column("gift_id", sa.Integer(), sa.ForeignKey("mall_gifts.id"), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("min_quantity", sa.Integer(), nullable=False),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("quoted_on", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("unit_cost_fen > 0", name="cost_positive"),
        sa.CheckConstraint("min_quantity > 0", name="min_quantity_positive"),
    )
    op.create_index(
        "ix_mall_supplier_quotes_gift", "mall_supplier_quotes", ["gift_id", "quoted_on"]
    )
    op.create_table(
        "mall_gift_suppliers",
        sa.Column("gift_id", sa.Integer(), sa.ForeignKey("mall_gifts.id"), primary_key=True),
        sa.Column(
            "preferred_supplier_id",
            sa.Integer(),
            sa.ForeignKey("mall_suppliers.id"),
            nullable=False,
        ),
        sa.Column(
            "backup_supplier_id", sa.Integer(), sa.ForeignKey("mall_suppliers.id"), nullable=True
        ),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "backup_supplier_id IS NULL OR backup_supplier_id <> preferred_supplier_id",
            name="backup_differs",
        ),
    )
    with op.batch_alter_table("mall_purchase_requests") as batch:
        batch.add_column(sa.Column("supplier_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unit_cost_fen", sa.BigInteger(), nullable=True))
        batch.create_foreign_key(
            "fk_mall_purchase_requests_supplier_id_mall_suppliers",
            "mall_suppliers",
            ["supplier_id"],
            ["id"],
        )
        batch.create_index("ix_mall_purchase_requests_supplier_id", ["supplier_id"])
    with op.batch_alter_table("mall_gifts") as batch:
        batch.add_column(sa.Column("base_points", sa.Integer(), nullable=True))
    op.create_table(
        "mall_price_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gift_id", sa.Integer(), sa.ForeignKey("mall_gifts.id"), nullable=False),
        sa.Column("old_points", sa.Integer(), nullable=False),
        sa.Column("new_points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_mall_price_changes_gift", "mall_price_changes", ["gift_id", "created_at"])


def downgrade() -> None:
    op.drop_table("mall_price_changes")
    with op.batch_alter_table("mall_gifts") as batch:
        batch.drop_column("base_points")
    with op.batch_alter_table("mall_purchase_requests") as batch:
        batch.drop_index("ix_mall_purchase_requests_supplier_id")
        batch.drop_constraint(
            "fk_mall_purchase_requests_supplier_id_mall_suppliers", type_="foreignkey"
        )
        batch.drop_column("unit_cost_fen")
        batch.drop_column("supplier_id")
    op.drop_table("mall_gift_suppliers")
    op.drop_table("mall_supplier_quotes")
    op.drop_table("mall_supplier_agreements")
    op.drop_table("mall_suppliers")
    with op.batch_alter_table("mall_flash_sales") as batch:
        batch.drop_column("closed_at")
