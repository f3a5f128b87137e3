"""A credit that gives back part of a redemption names it (``restores_id``), so the reversals
of a spend can be summed across cancellation and returns; adjustments are found per requester
and day for the daily approval limit.

Revision ID: 0012_ledger_guard
Revises: 0011_otp_source
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_ledger_guard"
down_revision = "0011_otp_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: the append-only triggers on points_postings stay in place.
    op.add_column(
        "points_postings",
        sa.Column(
            "restores_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
    )
    op.create_index("ix_points_postings_restores", "points_postings", ["restores_id"])
    op.create_index(
        "ix_points_adjustments_requester",
        "points_adjustments",
        ["requested_by_key", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_points_adjustments_requester", table_name="points_adjustments")
    op.drop_index("ix_points_postings_restores", table_name="points_postings")
    # Not a batch (table copy) on SQLite, which would lose the append-only triggers.
    op.execute("ALTER TABLE points_postings DROP COLUMN restores_id")
