"""Service desk (tickets, timeline, surveys, knowledge base), risk reviews, erasure notes.

Revision ID: 0028_service
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0028_service"
down_revision = "0027_campaigns_more"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "service_tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_no", sa.String(16), nullable=False, unique=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("priority", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(12), nullable=False),
        sa.Column("queue", sa.String(12), nullable=False),
        sa.Column("tier_code", sa.String(32), nullable=False),
        sa.Column("store_code", sa.String(32), nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("opened_by", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("response_due_at", TS, nullable=False),
        sa.Column("first_response_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("order_id", BigId, sa.ForeignKey("orders.id"), nullable=True),
        sa.Column("adjustment_id", BigId, sa.ForeignKey("points_adjustments.id"), nullable=True),
    )
    op.create_index(
        "ix_service_tickets_queue", "service_tickets", ["status", "queue", "response_due_at"]
    )
    op.create_index("ix_service_tickets_member", "service_tickets", ["member_id", "created_at"])
    op.create_table(
        "service_ticket_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("service_tickets.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_label", sa.String(120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
    )
    op.create_index("ix_service_ticket_events_ticket", "service_ticket_events", ["ticket_id", "id"])
    op.create_table(
        "service_surveys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer(),
            sa.ForeignKey("service_tickets.id"),
            nullable=True,
            unique=True,
        ),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("nps", sa.Integer(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(500), nullable=False),
        sa.Column("tier_code", sa.String(32), nullable=False),
        sa.Column("store_code", sa.String(32), nullable=True),
        sa.Column("answered_at", TS, nullable=False),
    )
    op.create_index("ix_service_surveys_at", "service_surveys", ["answered_at"])
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("keywords", sa.String(300), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("uq_kb_articles_slug_locale", "kb_articles", ["slug", "locale"], unique=True)
    op.create_table(
        "risk_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("store_code", sa.String(32), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("decision", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
    )
    op.create_index("ix_risk_reviews_status", "risk_reviews", ["status", "created_at"])
    op.create_index("ix_risk_reviews_member", "risk_reviews", ["member_id", "created_at"])
    op.create_table(
        "risk_member_flags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("flagged_at", TS, nullable=False),
    )
    op.create_index("uq_risk_member_flags", "risk_member_flags", ["member_id", "rule"], unique=True)
    with op.batch_alter_table("erasure_requests") as batch:
        batch.add_column(sa.Column("note", sa.String(500), nullable=True))
    _audit_redaction(allow=True)


def _audit_redaction(*, allow: bool) -> None:
    """The audit log stays append-only, except one change: an erasure may rewrite a record's
    before/after values when it stamps ``"redacted": true`` in after, keeping who, what and
    when. Without ``allow`` the original guard (no UPDATE at all) comes back."""
    if op.get_bind().dialect.name == "postgresql":
        if allow:
            op.execute(
                """
                CREATE OR REPLACE FUNCTION patron_audit_guard() RETURNS trigger AS $$
                BEGIN
                    IF TG_OP = 'UPDATE' AND NEW."after" ? 'redacted'
                       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.action = OLD.action
                       AND NEW.actor_type = OLD.actor_type AND NEW.actor_label = OLD.actor_label
                       AND NEW.entity_type = OLD.entity_type AND NEW.entity_id = OLD.entity_id
                    THEN
                        RETURN NEW;
                    END IF;
                    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                        USING ERRCODE = 'restrict_violation';
                END;
                $$ LANGUAGE plpgsql
                """
            )
            op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
            op.execute(
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION patron_audit_guard()"
            )
        else:
            op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
            op.execute(
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION patron_append_only()"
            )
            op.execute("DROP FUNCTION IF EXISTS patron_audit_guard()")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    if allow:
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "WHEN json_extract(NEW.\"after\", '$.redacted') IS NULL "
            "OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.action IS NOT OLD.action "
            "OR NEW.actor_type IS NOT OLD.actor_type OR NEW.actor_label IS NOT OLD.actor_label "
            "OR NEW.entity_type IS NOT OLD.entity_type OR NEW.entity_id IS NOT OLD.entity_id "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    _audit_redaction(allow=False)
    with op.batch_alter_table("erasure_requests") as batch:
        batch.drop_column("note")
    op.drop_table("risk_member_flags")
    op.drop_table("risk_reviews")
    op.drop_table("kb_articles")
    op.drop_table("service_surveys")
    op.drop_table("service_ticket_events")
    op.drop_table("service_tickets")
