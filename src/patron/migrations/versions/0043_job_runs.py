"""Jobs: the last run of each scheduled job, so /metrics, the console and `patron doctor` see
the jobs wherever they ran (an embedded scheduler, `patron jobs scheduler`, or cron).

Revision ID: 0043_job_runs
Revises: 0042_members_name_id
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0043_job_runs"
down_revision = "0042_members_name_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=120), nullable=True),
        sa.Column("last_host", sa.String(length=255), nullable=False),
        sa.Column("runs_ok", sa.BigInteger(), nullable=False),
        sa.Column("runs_failed", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "runs_ok >= 0 AND runs_failed >= 0", name=op.f("ck_job_runs_runs_not_negative")
        ),
        sa.CheckConstraint("last_ms >= 0", name=op.f("ck_job_runs_last_ms_not_negative")),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
