"""The migrations build exactly the schema the models describe (on SQLite and PostgreSQL), so a
model change without its migration — or a migration the models do not know — fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import patron.app  # noqa: F401  (imports every model)
from patron.db import Base

# Created by migration 0008 on PostgreSQL only (text_pattern_ops has no SQLite counterpart);
# the members model says so in a comment.
POSTGRES_ONLY_INDEXES = {"ix_members_name_pattern"}


def _known_exception(diff: object) -> bool:
    return (
        isinstance(diff, tuple)
        and diff[0] == "remove_index"
        and diff[1].name in POSTGRES_ONLY_INDEXES
    )


def test_migrated_schema_matches_the_models(database):
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(ctx, Base.metadata) if not _known_exception(d)]
    assert diffs == []


def test_the_name_index_migration_rebuilds_an_invalid_leftover(pg_database):
    """A concurrent build that failed leaves an INVALID index behind; migration 0042 run again
    drops it and builds a valid one instead of keeping it because the name exists."""
    from alembic import command
    from sqlalchemy import text

    from patron.migrate import alembic_config, upgrade

    url = pg_database.url
    command.downgrade(alembic_config(url), "0041_campaign_rewards")
    with pg_database.engine.begin() as conn:  # what a failed CREATE INDEX CONCURRENTLY leaves
        conn.execute(text("CREATE INDEX ix_members_name_id ON members (name, id)"))
        conn.execute(
            text(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid ="
                " 'ix_members_name_id'::regclass"
            )
        )
    upgrade(url)
    with pg_database.engine.connect() as conn:
        valid = conn.execute(
            text(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_members_name_id'::regclass"
            )
        ).scalar_one()
        old = conn.execute(text("SELECT to_regclass('ix_members_name')")).scalar_one()
    assert valid is True and old is None
