"""Identity: staff tokens carry a generation counter (revocation is exact, not per second),
failed staff sign-ins are counted per client address instead of locking the account, and
portal registration proofs are single-use.

Revision ID: 0013_identity
Revises: 0011_otp_source
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_identity"
down_revision = "0012_ledger_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )
        # the per-account lockout is replaced by the per-address throttle below
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_index", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_source_at", "login_failures", ["source_index", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_table(
        "otp_used_proofs",
        sa.Column("proof_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_otp_used_proofs_expires", "otp_used_proofs", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_otp_used_proofs_expires", table_name="otp_used_proofs")
    op.drop_table("otp_used_proofs")
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_login_failures_source_at", table_name="login_failures")
    op.drop_table("login_failures")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("token_generation")
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
