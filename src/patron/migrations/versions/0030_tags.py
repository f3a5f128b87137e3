"""Dynamic tags (rule, history), lifecycle stages with their transitions, segment versions and
static lists.

Revision ID: 0030_tags
Revises: 0024_segments
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0030_tags"
down_revision = "0029_console"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "static_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_static_lists")),
        sa.UniqueConstraint("code", name=op.f("uq_static_lists_code")),
    )
    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_versions_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "version", name=op.f("pk_segment_versions")),
    )
    op.create_table(
        "tag_rules",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("on_order", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("computed_at", TS, nullable=True),
        sa.Column("added_last", sa.Integer(), nullable=False),
        sa.Column("removed_last", sa.Integer(), nullable=False),
        sa.Column("order_mark", sa.BigInteger(), nullable=False),
        sa.Column("return_mark", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_tag_rules_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tag_id", name=op.f("pk_tag_rules")),
    )
    op.create_table(
        "member_stages",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_stages_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_stages")),
    )
    with op.batch_alter_table("member_stages", schema=None) as batch_op:
        batch_op.create_index("ix_member_stages_stage", ["stage"], unique=False)

    op.create_table(
        "stage_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=8), nullable=True),
        sa.Column("to_stage", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_stage_transitions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_transitions")),
    )
    with op.batch_alter_table("stage_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_stage_transitions_member", ["member_id", "day"], unique=False)
        batch_op.create_index(
            "ix_stage_transitions_month", ["month", "from_stage", "to_stage"], unique=False
        )

    op.create_table(
        "static_list_members",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["static_lists.id"],
            name=op.f("fk_static_list_members_list_id_static_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_static_list_members_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "member_id", name=op.f("pk_static_list_members")),
    )
    with op.batch_alter_table("static_list_members", schema=None) as batch_op:
        batch_op.create_index("ix_static_list_members_member", ["member_id"], unique=False)

    op.create_table(
        "tag_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_tag_history_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_tag_history_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_history")),
    )
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.create_index("ix_tag_history_member", ["member_id", "at"], unique=False)
        batch_op.create_index("ix_tag_history_tag", ["tag_id", "at"], unique=False)

    # Saved segments keep their current version as the first entry of their history.
    op.execute(
        "INSERT INTO segment_versions (segment_id, version, name, rule, created_by, created_at)"
        " SELECT id, version, name, rule, created_by, updated_at FROM segments"
    )


def downgrade() -> None:
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_history_tag")
        batch_op.drop_index("ix_tag_history_member")

    op.drop_table("tag_history")
    with op.batch_alter_table("static_list_members", schema=None) as batch_op:
        batch_op.drop_index("ix_static_list_members_member")

    op.drop_table("static_list_members")
    with op.batch_alter_table("stage_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_transitions_month")
        batch_op.drop_index("ix_stage_transitions_member")

    op.drop_table("stage_transitions")
    with op.batch_alter_table("member_stages", schema=None) as batch_op:
        batch_op.drop_index("ix_member_stages_stage")

    op.drop_table("member_stages")
    op.drop_table("tag_rules")
    op.drop_table("segment_versions")
    op.drop_table("static_lists")
