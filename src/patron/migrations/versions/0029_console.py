"""Console: a staff user's home store (a clerk sees that store's figures and orders).

Revision ID: 0029_console
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029_console"
down_revision = "0028_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("store_code", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("store_code")
