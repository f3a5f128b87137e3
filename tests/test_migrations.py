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
