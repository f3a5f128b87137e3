"""Console member search: indexes for the tier and registration-store filters, and on
PostgreSQL a pattern index so a name-prefix search (LIKE 'x%') does not scan the table under a
non-C collation.

Revision ID: 0008_members
Revises: 0007_dash
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0008_members"
down_revision = "0007_dash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_member_tiers_tier_code", "member_tiers", ["tier_code"])
    op.create_index("ix_members_registration_store", "members", ["registration_store_code"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_members_name_pattern",
            "members",
            ["name"],
            postgresql_ops={"name": "text_pattern_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_members_name_pattern", table_name="members")
    op.drop_index("ix_members_registration_store", table_name="members")
    op.drop_index("ix_member_tiers_tier_code", table_name="member_tiers")
