"""Messaging (templates, member addresses, the message queue) and journeys.

Revision ID: 0031_journeys
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031_journeys"
down_revision = "0030_tags"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("texts", JSON, nullable=False),
        sa.Column("provider_codes", JSON, nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "member_addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("member_id", "channel"),
    )
    op.create_table(
        "messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("template_code", sa.String(40), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_code", sa.String(40), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("deferrals", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("consent_event_id", BIGID, nullable=True),
        sa.Column("consent_at", TS, nullable=True),
        sa.Column("provider_id", sa.String(100), nullable=True),
        sa.Column("links", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("clicked_at", TS, nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("unsubscribed_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_member_sent", "messages", ["member_id", "sent_at"])
    op.create_index("ix_messages_source", "messages", ["source_kind", "source_code"])
    op.create_index("ix_messages_provider", "messages", ["provider_id"])
    op.create_table(
        "journeys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(24), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("steps", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "journey_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "journey_id",
            sa.Integer(),
            sa.ForeignKey("journeys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(24), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("steps", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("journey_id", "version"),
    )
    op.create_table(
        "journey_entries",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "journey_id",
            sa.Integer(),
            sa.ForeignKey("journeys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "member_id",
            sa.Integer(),
            sa.ForeignKey("members.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("entry_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("next_run_at", TS, nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.UniqueConstraint("journey_id", "member_id", "entry_key"),
    )
    op.create_index("ix_journey_entries_due", "journey_entries", ["status", "next_run_at"])
    op.create_table(
        "journey_path",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column(
            "entry_id",
            BIGID,
            sa.ForeignKey("journey_entries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(64), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("entry_id", "step"),
    )


def downgrade() -> None:
    op.drop_table("journey_path")
    op.drop_index("ix_journey_entries_due", table_name="journey_entries")
    op.drop_table("journey_entries")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
    for name in ("ix_messages_provider", "ix_messages_source", "ix_messages_member_sent"):
        op.drop_index(name, table_name="messages")
    op.drop_index("ix_messages_due", table_name="messages")
    op.drop_table("messages")
    op.drop_table("member_addresses")
    op.drop_table("message_templates")
