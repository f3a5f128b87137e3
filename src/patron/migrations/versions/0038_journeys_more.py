"""Segments: a member's purchases in a window are read from the index alone on PostgreSQL;
messages: when a message was first opened.

``ix_orders_member_time`` carries the status and amounts a segment condition sums (an
index-only scan per member instead of one row lookup per order). SQLite keeps the plain index.

Revision ID: 0038_journeys_more
Revises: 0032_analytics_more
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038_journeys_more"
down_revision = "0037_service_more"
branch_labels = None
depends_on = None

INCLUDED = ["status", "total_fen", "refunded_fen", "discount_fen"]


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_orders_member_time", table_name="orders")
    op.create_index(
        "ix_orders_member_time",
        "orders",
        ["member_id", "ordered_at"],
        postgresql_include=INCLUDED,
    )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("opened_at")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_orders_member_time", table_name="orders")
    op.create_index("ix_orders_member_time", "orders", ["member_id", "ordered_at"])
