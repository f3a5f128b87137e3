"""One-time codes remember a keyed hash of the client address that asked for them, so the
portal can cap codes per address and hour across phones.

Revision ID: 0011_otp_source
Revises: 0010_member_sessions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_otp_source"
down_revision = "0010_member_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("otp_codes") as batch:
        batch.add_column(sa.Column("source_index", sa.String(64), nullable=True))
    op.create_index("ix_otp_codes_source_created", "otp_codes", ["source_index", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_otp_codes_source_created", table_name="otp_codes")
    with op.batch_alter_table("otp_codes") as batch:
        batch.drop_column("source_index")
