"""One scheduler at a time (jobs/leader.py), on SQLite (a file lock) and PostgreSQL (an advisory
lock on a connection of its own): a second process stands by, takes over when the first goes,
and a leader whose lock connection died steps down."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from patron.db import Database
from patron.jobs.leader import Leader, lock_for
from patron.jobs.scheduler import Scheduler, Task


@pytest.fixture
def second(database):
    # Another process's view of the same database: its own engine and connections.
    other = Database(database.url)
    yield other
    other.dispose()


def test_one_leader_at_a_time_and_the_standby_takes_over(database, second):
    first = Leader(lock_for(database), retry_seconds=0)
    standby = Leader(lock_for(second), retry_seconds=0)
    assert first.hold() is True
    assert standby.hold() is False
    assert first.hold() is True  # still
    first.release()
    assert standby.hold() is True
    assert first.hold() is False
    standby.release()


def test_a_standby_asks_again_only_after_its_retry_interval(database, second):
    first = Leader(lock_for(database), retry_seconds=0)
    standby = Leader(lock_for(second), retry_seconds=3600)
    assert first.hold() and not standby.hold()
    first.release()
    assert standby.hold() is False  # not yet: it asked a moment ago
    standby._next_try = 0.0
    assert standby.hold() is True
    standby.release()


def test_a_leader_whose_lock_session_ends_steps_down(pg_database):
    second = Database(pg_database.url)
    try:
        leader = Leader(lock_for(pg_database), retry_seconds=3600)
        standby = Leader(lock_for(second), retry_seconds=0)
        assert leader.hold()
        pid = leader.lock._conn.scalar(text("SELECT pg_backend_pid()"))  # type: ignore[attr-defined]
        with second.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        # The server released the lock with the session: the standby takes it, the old leader
        # notices its connection is gone and stands down.
        deadline = time.monotonic() + 10
        while not standby.hold() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.leading
        assert leader.hold() is False
        standby.release()
    finally:
        second.dispose()


def test_of_two_schedulers_only_the_leader_runs_the_jobs(database, second):
    runs: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def count(name: str):
        def run() -> None:
            with lock:
                runs[name] += 1

        return run

    a = Scheduler(
        [Task("job", 0.01, count("a"))], tick_seconds=0.01, leader=Leader(lock_for(database), 0)
    )
    b = Scheduler(
        [Task("job", 0.01, count("b"))], tick_seconds=0.01, leader=Leader(lock_for(second), 0)
    )
    a.start()
    deadline = time.monotonic() + 10
    while runs["a"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    b.start()
    time.sleep(0.5)
    with lock:
        assert runs["a"] > 0 and runs["b"] == 0
    a.stop()  # releases the lock: b takes over
    deadline = time.monotonic() + 10
    while runs["b"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    b.stop()
    assert runs["b"] > 0


def test_an_in_memory_database_is_its_own_leader():
    db = Database("sqlite://")
    try:
        assert Leader(lock_for(db)).hold()
    finally:
        db.dispose()


def test_the_lock_session_never_goes_back_to_the_pool(pg_database):
    leader = Leader(lock_for(pg_database), retry_seconds=0)
    assert leader.hold()
    raw = leader.lock._conn.connection.dbapi_connection  # type: ignore[attr-defined]
    leader.release()
    assert raw.closed  # the session ended, not pooled: no session can keep the lock


def test_a_scheduler_stopped_while_a_job_runs_keeps_the_lock(database, second):
    started, finish = threading.Event(), threading.Event()

    def long_job() -> None:
        started.set()
        finish.wait(10)

    leader = Leader(lock_for(database), 0)
    s = Scheduler([Task("long", 0.01, long_job)], tick_seconds=0.01, leader=leader)
    s.start()
    assert started.wait(10)
    s.stop(timeout=0.05)  # the job is still running
    assert Leader(lock_for(second), 0).hold() is False
    finish.set()
    s.stop(timeout=10)
    assert Leader(lock_for(second), 0).hold() is True
