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
from patron.db import Database
from patron.web.deps import get_session


def replica_of(settings: Settings) -> Database | None:
    """The replica's Database for a job or a command, or None when reads go to the primary."""
    return Database(settings.read_database_url) if settings.read_database_url else None


@contextmanager
def snapshot(replica: Database | None) -> Iterator[Session | None]:
    """A read-only session on ``replica`` whose statements all see one snapshot, or None
    without a replica (the caller then reads its own session). On PostgreSQL the transaction
    is REPEATABLE READ and READ ONLY (a hot standby allows both), so a report made of several
    statements adds up even while the replica replays new WAL under it."""
    if replica is None:
        yield None
        return
    session = replica.session()
    try:
        if replica.dialect == "postgresql":
            session.connection(
                execution_options={
                    "isolation_level": "REPEATABLE READ",
                    "postgresql_readonly": True,
                }
            )
        yield session
    finally:
        session.rollback()  # read only: nothing to keep
        session.close()


def read_database(request: Request) -> Database | None:
    """The replica's Database, or None when reads go to the primary."""
    replica: Database | None = getattr(request.app.state, "read_db", None)
    return replica


@contextmanager
def read_session(request: Request) -> Iterator[Session]:
    with snapshot(read_database(request)) as session:
        yield session if session is not None else get_session(request)
