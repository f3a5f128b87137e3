"""Analytics: next purchase per member, category replenishment, recommendations and anomaly
alerts on daily metrics.

Revision ID: 0032_analytics_more
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032_analytics_more"
down_revision = "0031_journeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member_scores") as batch:
        batch.add_column(sa.Column("next_purchase_days", sa.Float(), nullable=True))
    op.create_table(
        "member_replenishment",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("cycle_days", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_replenishment_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "category", name=op.f("pk_member_replenishment")),
    )
    op.create_index("ix_member_replenishment_due_on", "member_replenishment", ["due_on"])
    op.create_table(
        "member_recommendations",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_recommendations_member_id_members"),
        ),
        sa.PrimaryKeyConstraint(
            "member_id", "kind", "rank", name=op.f("pk_member_recommendations")
        ),
    )
    op.create_index("ix_member_recommendations_item", "member_recommendations", ["kind", "item"])
    op.create_table(
        "analytics_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_alerts")),
        sa.UniqueConstraint("metric", "scope", "day", name="uq_analytics_alerts_metric_scope_day"),
    )


def downgrade() -> None:
    op.drop_table("analytics_alerts")
    op.drop_index("ix_member_recommendations_item", table_name="member_recommendations")
    op.drop_table("member_recommendations")
    op.drop_index("ix_member_replenishment_due_on", table_name="member_replenishment")
    op.drop_table("member_replenishment")
    with op.batch_alter_table("member_scores") as batch:
        batch.drop_column("next_purchase_days")
