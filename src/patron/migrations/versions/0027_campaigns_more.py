"""Recall packs given to dormant members; an index for what one caller credited today.

Revision ID: 0027_campaigns_more
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_campaigns_more"
down_revision = "0026_mall_more"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recall_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("granted_on", sa.Date(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("coupon_template", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("member_id", "granted_on", name=op.f("uq_recall_grants_member_id")),
    )
    op.create_index(
        "ix_audit_log_action_actor_at", "audit_log", ["action", "actor_type", "actor_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_actor_at", table_name="audit_log")
    op.drop_table("recall_grants")
