"""Points ledger, growth ledger, tiers: postings, lots, allocations, holds, refunds,
adjustments, expiry notices, growth postings, member tiers and tier history.

Revision ID: 0002_ledger
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ledger"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

# Corrections are new rows: the database itself refuses UPDATE and DELETE on these.
APPEND_ONLY_TABLES = ("points_postings", "points_allocations", "growth_postings", "tier_history")


def append_only(table: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # patron_append_only() was created by 0001; re-create to keep this revision standalone.
        op.execute(
            """
            CREATE OR REPLACE FUNCTION patron_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION patron_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def drop_append_only(table: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def upgrade() -> None:
    op.create_table(
        "growth_accounts",
        sa.Column("member_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_growth_accounts_balance_nonneg")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_growth_accounts_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_growth_accounts")),
    )
    op.create_table(
        "growth_postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('earn','clawback','adjust')", name=op.f("ck_growth_postings_kind")
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_growth_postings_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_growth_postings_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_postings")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_growth_postings_idempotency_key")),
    )
    op.create_index(
        "ix_growth_postings_member", "growth_postings", ["member_id", "effective_at"], unique=False
    )
    op.create_index(
        "ix_growth_postings_source", "growth_postings", ["source_type", "source_id"], unique=False
    )
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tier_code", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_evaluation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grace_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("override_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("override_reason", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_tiers_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )
    op.create_index(
        "ix_member_tiers_next_evaluation", "member_tiers", ["next_evaluation_at"], unique=False
    )
    op.create_table(
        "points_accounts",
        sa.Column("member_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("debt", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_expired", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("available >= 0", name=op.f("ck_points_accounts_available_nonneg")),
        sa.CheckConstraint("debt >= 0", name=op.f("ck_points_accounts_debt_nonneg")),
        sa.CheckConstraint("pending >= 0", name=op.f("ck_points_accounts_pending_nonneg")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_points_accounts_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_points_accounts")),
    )
    op.create_table(
        "points_adjustments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("ledger", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("requested_by_key", sa.String(length=80), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decision_note", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "ledger IN ('points','growth')", name=op.f("ck_points_adjustments_ledger")
        ),
        sa.CheckConstraint(
            "status IN ('pending_approval','applied','rejected')",
            name=op.f("ck_points_adjustments_status"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_adjustments_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_adjustments")),
    )
    op.create_index("ix_points_adjustments_status", "points_adjustments", ["status"], unique=False)
    op.create_table(
        "points_expiry_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_expiry_notices_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_expiry_notices")),
        sa.UniqueConstraint(
            "member_id", "expires_on", name=op.f("uq_points_expiry_notices_member_id")
        ),
    )
    op.create_table(
        "points_postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("available_delta", sa.BigInteger(), nullable=False),
        sa.Column("pending_delta", sa.BigInteger(), nullable=False),
        sa.Column("debt_delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column(
            "reverses_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('earn','release','redeem','reversal','expire','clawback','adjust','repay')",
            name=op.f("ck_points_postings_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_postings_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["points_postings.id"],
            name=op.f("fk_points_postings_reverses_id_points_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_postings")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_postings_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_points_postings_reverses_id")),
    )
    op.create_index(
        "ix_points_postings_member", "points_postings", ["member_id", "id"], unique=False
    )
    op.create_index(
        "ix_points_postings_source", "points_postings", ["source_type", "source_id"], unique=False
    )
    op.create_table(
        "points_refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("order_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("refund_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("points_clawed", sa.BigInteger(), nullable=False),
        sa.Column("growth_clawed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_refunds_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_refunds")),
        sa.UniqueConstraint(
            "source_type", "source_id", "refund_id", name=op.f("uq_points_refunds_source_type")
        ),
    )
    op.create_table(
        "tier_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("from_code", sa.String(length=32), nullable=False),
        sa.Column("to_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_history_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_history")),
    )
    op.create_index("ix_tier_history_member", "tier_history", ["member_id", "id"], unique=False)
    op.create_table(
        "points_holds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column(
            "posting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("original_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','released','cancelled')", name=op.f("ck_points_holds_status")
        ),
        sa.CheckConstraint(
            "amount >= 0 AND amount <= original_amount", name=op.f("ck_points_holds_amount_range")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_holds_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["points_postings.id"],
            name=op.f("fk_points_holds_posting_id_points_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_holds")),
    )
    op.create_index(
        "ix_points_holds_due",
        "points_holds",
        ["release_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_points_holds_member", "points_holds", ["member_id"], unique=False)
    op.create_index(
        "ix_points_holds_source", "points_holds", ["source_type", "source_id"], unique=False
    )
    op.create_table(
        "points_lots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column(
            "posting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_points_lots_amount_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_points_lots_remaining_range")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_lots_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["points_postings.id"],
            name=op.f("fk_points_lots_posting_id_points_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lots")),
    )
    op.create_index(
        "ix_points_lots_due",
        "points_lots",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
        sqlite_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_lots_member_open",
        "points_lots",
        ["member_id"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
        sqlite_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_lots_source", "points_lots", ["source_type", "source_id"], unique=False
    )
    op.create_table(
        "points_allocations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "posting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_points_allocations_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lots.id"], name=op.f("fk_points_allocations_lot_id_points_lots")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["points_postings.id"],
            name=op.f("fk_points_allocations_posting_id_points_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_allocations")),
    )
    op.create_index("ix_points_allocations_lot", "points_allocations", ["lot_id"], unique=False)
    op.create_index(
        "ix_points_allocations_posting", "points_allocations", ["posting_id"], unique=False
    )
    # ### end Alembic commands ###

    for table in APPEND_ONLY_TABLES:
        append_only(table)


def downgrade() -> None:
    for table in APPEND_ONLY_TABLES:
        drop_append_only(table)
    for table in (
        "points_allocations",
        "points_lots",
        "points_holds",
        "tier_history",
        "points_refunds",
        "points_expiry_notices",
        "points_adjustments",
        "member_tiers",
        "growth_postings",
        "growth_accounts",
        "points_accounts",
        "points_postings",
    ):
        op.drop_table(table)
