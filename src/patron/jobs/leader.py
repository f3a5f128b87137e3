"""One scheduler at a time: the process that holds the scheduler's lock runs the jobs, the others
stand by and take over when it goes.

Every `patron serve` worker (and any `patron jobs scheduler`) starts the scheduler; without a
leader each of them would run every job — harmless, since jobs are idempotent, but a nightly
scoring of a million members would run once per worker. The lock is

- on PostgreSQL, a session advisory lock held on a connection of its own (across hosts: every
  process that reaches the database competes); the server releases it when that connection
  ends, so a killed leader is replaced at the next try of another process;
- on SQLite, an exclusive ``flock`` on a file beside the database (one host by nature), which
  the kernel releases when the process ends.

A standby tries again every ``retry_seconds``; the leader checks its lock connection before
each round and steps down if it is gone (the database restarted), so two leaders cannot run for
longer than one round."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url

from patron.db import Database
from patron.observability import get_logger

log = get_logger("patron.jobs")

#: pg_advisory_lock key of the scheduler (any constant; advisory locks are per database)
LOCK_KEY = 0x7061_7472_6F6E_01  # "patron" + 1


class Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class PostgresLock:
    def __init__(self, db: Database, key: int = LOCK_KEY) -> None:
        self.db, self.key = db, key
        self._conn: Any = None

    def try_acquire(self) -> bool:
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if got:
            self._conn = conn  # kept checked out: the lock lives as long as this session
        else:
            conn.close()
        return got

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.scalar(text("SELECT 1"))
            return True
        except Exception:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            self._conn = None
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            self._conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        # And the session ends with the connection (invalidated, not returned to the pool): a
        # pooled session still holding the lock, had the unlock failed, would keep every other
        # process standing by.
        with contextlib.suppress(Exception):
            self._conn.invalidate()
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AlwaysLeader:
    """An in-memory SQLite database belongs to one process: nobody to compete with."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def lock_for(db: Database) -> Lock:
    if db.dialect == "postgresql":
        return PostgresLock(db)
    database = make_url(db.url).database
    if not database or database == ":memory:":
        return AlwaysLeader()
    return FileLock(Path(f"{database}.scheduler.lock"))


class Leader:
    """Whether this process runs the jobs now; asks the lock at most every ``retry_seconds``."""

    def __init__(self, lock: Lock, retry_seconds: float = 15.0) -> None:
        self.lock, self.retry = lock, retry_seconds
        self.leading = False
        self._next_try = 0.0
        self._said: bool | None = None

    def hold(self) -> bool:
        if self.leading:
            if self.lock.still_held():
                return True
            self.leading = False
            log.warning("scheduler_lock_lost")
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry
        try:
            self.leading = self.lock.try_acquire()
        except Exception as exc:  # the database is down: stand by, try again later
            log.warning("scheduler_lock_failed", error_type=type(exc).__name__)
            return False
        if self._said is not self.leading:  # say each change once, not every try
            self._said = self.leading
            log.info(
                "scheduler_leading" if self.leading else "scheduler_standing_by", pid=os.getpid()
            )
        return self.leading

    def release(self) -> None:
        if self.leading:
            self.lock.release()
            self.leading = False
