"""Analytics models: per-member scores (RFM, P(alive), expected purchases, CLV, churn risk)
written by the nightly scores job, and the record of model runs.

Revision ID: 0022_analytics
Revises: 0020_campaigns
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022_analytics"
down_revision = "0020_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_scores",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=False),
        sa.Column("purchase_days", sa.Integer(), nullable=False),
        sa.Column("monetary_fen", sa.BigInteger(), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=False),
        sa.Column("f_score", sa.Integer(), nullable=False),
        sa.Column("m_score", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("clv_fen", sa.BigInteger(), nullable=True),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_scores_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_scores")),
    )
    op.create_index("ix_member_scores_segment", "member_scores", ["segment"])
    op.create_table(
        "analytics_model_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_model_runs")),
    )
    op.create_index("ix_analytics_model_runs_kind", "analytics_model_runs", ["kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_analytics_model_runs_kind", table_name="analytics_model_runs")
    op.drop_table("analytics_model_runs")
    op.drop_index("ix_member_scores_segment", table_name="member_scores")
    op.drop_table("member_scores")
