"""Portal sessions a member (or a phone change) can end: sessions issued before this instant
are refused.

Revision ID: 0010_member_sessions
Revises: 0009_portal
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_member_sessions"
down_revision = "0009_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(
            sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("sessions_valid_after")
