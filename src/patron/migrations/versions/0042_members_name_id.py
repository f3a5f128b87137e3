"""Members: the name index also holds the id, so the member list sorted by name — and its
export, which seeks page after page (kit.keyset) — is read from the index in order, blank
names included, without sorting the rows of a name or of the blank ones. Replaces
ix_members_name (its leading column serves everything that one did). Built CONCURRENTLY on
PostgreSQL, outside a transaction, so registrations keep writing meanwhile.

Revision ID: 0042_members_name_id
Revises: 0041_campaign_rewards
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042_members_name_id"
down_revision = "0041_campaign_rewards"
branch_labels = None
depends_on = None


def _swap(create: str, columns: list[str], drop: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            # A concurrent build that failed (a deadlock, a cancelled deploy) leaves an INVALID
            # index of that name behind, which IF NOT EXISTS would then keep: drop it first.
            invalid = bind.execute(
                sa.text(
                    "SELECT NOT i.indisvalid FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name"
                ),
                {"name": create},
            ).scalar()
            if invalid:
                op.drop_index(create, table_name="members", postgresql_concurrently=True)
            op.create_index(
                create, "members", columns, postgresql_concurrently=True, if_not_exists=True
            )
            op.drop_index(drop, table_name="members", postgresql_concurrently=True, if_exists=True)
    else:
        op.create_index(create, "members", columns)
        op.drop_index(drop, table_name="members")


def upgrade() -> None:
    _swap("ix_members_name_id", ["name", "id"], "ix_members_name")


def downgrade() -> None:
    _swap("ix_members_name", ["name"], "ix_members_name_id")
