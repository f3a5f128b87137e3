"""Console member search: indexes for the tier and registration-store filters.

Revision ID: 0007_members
Revises: 0006_console
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0007_members"
down_revision = "0006_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_member_tiers_tier_code", "member_tiers", ["tier_code"])
    op.create_index("ix_members_registration_store", "members", ["registration_store_code"])


def downgrade() -> None:
    op.drop_index("ix_members_registration_store", table_name="members")
    op.drop_index("ix_member_tiers_tier_code", table_name="member_tiers")
