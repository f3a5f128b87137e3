"""The event log keeps every ledger and tier event (with the member's number for filtering);
deliveries record status, timing and an error class instead of the receiver's reply.

Revision ID: 0016_events
Revises: 0011_otp_source
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_events"
down_revision = "0013_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("member_no", sa.String(16), nullable=True))
    op.create_index("ix_webhook_events_type", "webhook_events", ["event_type", "id"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("last_duration_ms", sa.Integer(), nullable=True))
    # Earlier versions kept the first 200 characters of a non-2xx reply here: drop them.
    op.execute(
        "UPDATE webhook_deliveries SET last_error = 'http_status' "
        "WHERE last_status_code IS NOT NULL AND last_error IS NOT NULL"
    )
    op.execute(
        "UPDATE webhook_deliveries SET last_error = CASE "
        "WHEN last_error = 'endpoint removed or inactive' THEN 'endpoint_inactive' "
        "ELSE 'transport_error' END "
        "WHERE last_status_code IS NULL AND last_error IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("last_duration_ms")
    op.drop_index("ix_webhook_events_type", table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("member_no")
