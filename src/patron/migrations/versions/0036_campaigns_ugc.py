"""Campaigns: UGC contests with their entries (moderation and winners).

Revision ID: 0036_campaigns_ugc
Revises: 0032_analytics_more
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036_campaigns_ugc"
down_revision = "0035_mall_images"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ugc_contests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("reward_points", sa.BigInteger(), nullable=False),
        sa.Column("reward_coupon", sa.String(length=64), nullable=True),
        sa.Column("max_winners", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_contests")),
        sa.UniqueConstraint("code", name=op.f("uq_ugc_contests_code")),
    )
    op.create_table(
        "ugc_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("image_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("moderated_at", TS, nullable=True),
        sa.Column("winner", sa.Boolean(), nullable=False),
        sa.Column("rewarded_at", TS, nullable=True),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("coupon_code", sa.String(length=16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["contest_id"], ["ugc_contests.id"], name=op.f("fk_ugc_entries_contest_id_ugc_contests")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_ugc_entries_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ugc_entries")),
        sa.UniqueConstraint("contest_id", "member_id", name="uq_ugc_entries_member"),
    )
    op.create_index("ix_ugc_entries_status", "ugc_entries", ["contest_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_ugc_entries_status", table_name="ugc_entries")
    op.drop_table("ugc_entries")
    op.drop_table("ugc_contests")
