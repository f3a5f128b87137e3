"""`patron serve`'s scheduler hands the read replica to the scores job: with
PATRON_READ_DATABASE_URL set, its member_scores task reads the history there and writes the
scores to the primary. The "replica" here is a copy of a SQLite primary taken before a member
bought anything (the streaming replica itself: tests/ops/test_read_replica.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from patron.analytics.models import MemberScore
from patron.app import create_app
from patron.db import Database
from patron.jobs import scheduler
from patron.migrate import upgrade
from tests.analytics.history import add_members, add_orders
from tests.conftest import START, make_settings


def _buyer(db: Database, member_id: int) -> None:
    with db.unit_of_work() as s:
        add_members(s, 1, start_id=member_id, at=START - timedelta(days=800))
        days = [(member_id, (START - timedelta(days=d)).date(), 5000) for d in (600, 300)]
        add_orders(s, days)


def test_the_scheduler_scores_from_the_replica(tmp_path, clock, monkeypatch):
    primary = Database(f"sqlite:///{tmp_path / 'primary.db'}")
    upgrade(primary.url)
    _buyer(primary, 1)
    with (
        closing(sqlite3.connect(tmp_path / "primary.db")) as src,
        closing(sqlite3.connect(tmp_path / "replica.db")) as copy,
    ):
        src.backup(copy)
    _buyer(primary, 2)  # on the primary only
    tasks: list[scheduler.Task] = []
    monkeypatch.setattr(scheduler.Scheduler, "start", lambda self: tasks.extend(self.tasks))
    monkeypatch.setattr(scheduler.Scheduler, "stop", lambda self: None)
    settings = make_settings(
        primary, scheduler=True, read_database_url=f"sqlite:///{tmp_path / 'replica.db'}"
    )
    app = create_app(settings, primary, clock)
    with TestClient(app):
        (task,) = [t for t in tasks if t.name == "member_scores"]
        task.run()
    with primary.unit_of_work() as s:
        assert set(s.scalars(select(MemberScore.member_id))) == {1}
    with app.state.read_db.engine.connect() as conn:  # nothing was written to the replica
        assert conn.execute(text("SELECT count(*) FROM member_scores")).scalar_one() == 0
    app.state.read_db.dispose()
    primary.dispose()
