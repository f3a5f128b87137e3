"""Reads that may lag: analytics and exports can read a PostgreSQL streaming replica.

With ``PATRON_READ_DATABASE_URL`` set, ``read_session`` opens a session on the replica (a few
seconds behind the primary); without it, the request's own session. Jobs and commands take the
replica's ``Database`` from ``replica_of`` and open ``snapshot`` sessions on it. Never use it
for a read that gates a write (a balance before a spend, stock before a redemption): those stay
on the primary, inside the unit of work. docs/operations.md lists which reads go where.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy.orm import Session

from patron.config import Settings
from patron.db import READ_ONLY, Database
from patron.web.deps import get_session


def replica_of(settings: Settings) -> Database | None:
    """The replica's Database for a job or a command, or None when reads go to the primary."""
    return Database(settings.read_database_url) if settings.read_database_url else None


@contextmanager
def read_only(db: Database) -> Iterator[Session]:
    """A session on ``db`` that only reads, all its statements in one snapshot. On PostgreSQL
    the transaction is REPEATABLE READ and READ ONLY (a hot standby allows both), so a report
    made of several statements, or an export read page by page, adds up even while rows are
    written (or replayed) under it. On SQLite it begins deferred, not IMMEDIATE: in WAL mode it
    then reads one snapshot without holding the write lock, so an export that streams for
    minutes blocks no write."""
    session = db.session()
    try:
        options: dict[str, object] = {READ_ONLY: True}
        if db.dialect == "postgresql":
            options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        session.connection(execution_options=options)
        yield session
    finally:
        session.rollback()  # read only: nothing to keep
        session.close()


@contextmanager
def snapshot(replica: Database | None) -> Iterator[Session | None]:
    """A ``read_only`` session on the replica, or None without one (the caller then reads
    its own session)."""
    if replica is None:
        yield None
        return
    with read_only(replica) as session:
        yield session


def read_database(request: Request) -> Database | None:
    """The replica's Database, or None when reads go to the primary."""
    replica: Database | None = getattr(request.app.state, "read_db", None)
    return replica


@contextmanager
def read_session(request: Request) -> Iterator[Session]:
    with snapshot(read_database(request)) as session:
        yield session if session is not None else get_session(request)
