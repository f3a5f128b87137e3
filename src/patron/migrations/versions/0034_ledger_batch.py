"""Ledger: a member's open lots are indexed with their expiry, so the expiry job finds the
due lots of a range of members without scanning every due lot of the ledger per batch.

Revision ID: 0034_ledger_batch
Revises: 0032_analytics_more
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034_ledger_batch"
down_revision = "0032_analytics_more"
branch_labels = None
depends_on = None

OPEN = sa.text("remaining > 0")


def upgrade() -> None:
    op.drop_index("ix_points_lots_member_open", table_name="points_lots")
    op.create_index(
        "ix_points_lots_member_open",
        "points_lots",
        ["member_id", "expires_at"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_points_lots_member_open", table_name="points_lots")
    op.create_index(
        "ix_points_lots_member_open",
        "points_lots",
        ["member_id"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
