"""Reads that may lag: analytics and exports can read a PostgreSQL streaming replica.

With ``PATRON_READ_DATABASE_URL`` set, ``read_session`` opens a session on the replica (a few
seconds behind the primary); without it, the request's own session. Never use it for a read
that gates a write (a balance before a spend, stock before a redemption): those stay on the
primary, inside the request's unit of work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy.orm import Session

from patron.db import Database
from patron.web.deps import get_session


def read_database(request: Request) -> Database | None:
    """The replica's Database, or None when reads go to the primary."""
    replica: Database | None = getattr(request.app.state, "read_db", None)
    return replica


@contextmanager
def read_session(request: Request) -> Iterator[Session]:
    replica = read_database(request)
    if replica is None:
        yield get_session(request)
        return
    session = replica.session()
    try:
        yield session
    finally:
        session.rollback()  # read only: nothing to keep
        session.close()
