"""Job runs are recorded in the database (jobs/runs.py), so the servers' /metrics, the console
and `patron doctor` see every job whichever process ran it (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from patron.db import Database, utcnow
from patron.jobs import domain, runs
from patron.jobs.models import JobRun
from patron.jobs.scheduler import Scheduler, Task
from patron.jobs.tasks import SCHEDULE
from patron.ops import doctor
from tests.web.test_members_pages import staff  # noqa: F401

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_ok", "ok_ago", "every", "state"),
    [
        (None, None, 3600, "never"),
        (False, timedelta(minutes=1), 3600, "failed"),
        (False, None, 3600, "failed"),  # failed every time: failed, not only behind
        (True, timedelta(hours=3, minutes=10), 3600, "ok"),  # exactly three intervals + grace
        (True, timedelta(hours=3, minutes=10, seconds=1), 3600, "overdue"),
        (True, timedelta(days=30), None, "ok"),  # cron alone: its interval is cron's to know
        (True, timedelta(minutes=11), 30, "ok"),  # 3 × 30 s + 10 min = 11.5 min
        (True, timedelta(minutes=12), 30, "overdue"),
    ],
)
def test_a_job_is_behind_after_three_intervals_without_success(last_ok, ok_ago, every, state):
    at = NOW - ok_ago if ok_ago else None
    assert domain.state_of(last_ok=last_ok, last_ok_at=at, every_seconds=every, now=NOW) == state


def _run(database: Database, job: str) -> JobRun:
    with database.session() as s:
        found = s.scalar(select(JobRun).where(JobRun.job == job))
        assert found is not None
        return found


def test_the_scheduler_records_each_run_with_its_outcome(database):
    def boom() -> None:
        raise LookupError("member 13800138000 not found")  # a message may hold personal data

    failing = [True]

    def sometimes() -> None:
        if failing[0]:
            boom()

    scheduler = Scheduler(
        [Task("expire_points", 0, lambda: None), Task("tiers", 0, sometimes)], db=database
    )
    before = utcnow()
    assert scheduler.run_due() == ["expire_points", "tiers"]
    ok = _run(database, "expire_points")
    assert (ok.last_ok, ok.runs_ok, ok.runs_failed, ok.last_error) == (True, 1, 0, None)
    assert ok.last_ok_at is not None and ok.last_ok_at >= before
    assert ok.every_seconds == 0 and ok.last_host == runs.HOST and ok.last_ms >= 0
    failed = _run(database, "tiers")
    assert (failed.last_ok, failed.runs_ok, failed.runs_failed) == (False, 0, 1)
    assert failed.last_error == "LookupError"  # the type only, never the message
    assert failed.last_ok_at is None and failed.last_failed_at is not None
    failing[0] = False
    scheduler.run_due()
    again = _run(database, "tiers")
    assert (again.last_ok, again.runs_ok, again.runs_failed, again.last_error) == (
        True,
        1,
        1,
        None,
    )
    assert again.last_failed_at == failed.last_failed_at  # kept: when it last failed
    assert _run(database, "expire_points").runs_ok == 2


def test_a_run_the_database_cannot_take_is_logged_and_the_scheduler_goes_on():
    gone = Database("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    ran = []
    try:
        scheduler = Scheduler([Task("a", 0, lambda: ran.append(1))], db=gone)
        assert scheduler.run_due() == ["a"]
        assert scheduler.run_due() == ["a"]
    finally:
        gone.dispose()
    assert ran == [1, 1]


def test_a_cron_run_keeps_the_schedulers_interval(database):
    start = utcnow()
    runs.record(
        database, "tags", started_at=start, finished_at=start, error=None, every_seconds=3600
    )
    runs.record(
        database, "tags", started_at=start, finished_at=start, error=None, every_seconds=None
    )
    assert _run(database, "tags").every_seconds == 3600
    assert _run(database, "tags").runs_ok == 2


def test_statuses_list_every_scheduled_job_and_any_other_recorded(database):
    now = utcnow()
    runs.record(
        database,
        "expire_points",
        started_at=now - timedelta(hours=5),
        finished_at=now - timedelta(hours=5),
        error=None,
        every_seconds=3600,
    )
    runs.record(
        database,
        "purge_idempotency",
        started_at=now,
        finished_at=now,
        error=None,
        every_seconds=None,
    )
    with database.session() as s:
        found = {j.job: j for j in runs.statuses(s, SCHEDULE, now)}
    assert set(found) == set(SCHEDULE) | {"purge_idempotency"}
    assert found["expire_points"].state == "overdue"  # 5 h without success, hourly job
    assert found["purge_idempotency"].state == "ok"  # cron only
    assert found["tiers"].state == "never" and found["tiers"].every_seconds == 3600


def test_doctor_warns_of_a_failed_or_stopped_job(database):
    now = utcnow()
    found = doctor.check_jobs(database, now)
    assert [(f.level, f.message) for f in found] == [("warning", "no scheduled job has run yet")]
    runs.record(database, "tiers", started_at=now, finished_at=now, error=None, every_seconds=3600)
    assert [f.level for f in doctor.check_jobs(database, now)] == ["ok"]
    runs.record(
        database, "messages", started_at=now, finished_at=now, error=OSError(), every_seconds=30
    )
    later = now + timedelta(hours=4)
    found = doctor.check_jobs(database, later)
    assert {f.level for f in found} == {"warning"}
    messages = sorted(f.message for f in found)
    assert messages[0].startswith("job messages failed at ") and "(OSError)" in messages[0]
    assert messages[1].startswith("job tiers has not succeeded since ")


def test_the_console_lists_the_jobs_failed_first_to_admins_only(staff, database):  # noqa: F811
    now = utcnow()
    runs.record(
        database, "tiers", started_at=now, finished_at=now, error=KeyError(), every_seconds=3600
    )
    runs.record(
        database, "expire_points", started_at=now, finished_at=now, error=None, every_seconds=3600
    )
    admin = staff("admin")
    page = admin.get("/console/admin/jobs")
    assert page.status_code == 200
    rows = re.findall(r'data-job="([a-z_]+)" data-state="([a-z]+)"', page.text)
    assert rows[0] == ("tiers", "failed")
    assert len(rows) == len(SCHEDULE)
    states = dict(rows)
    assert states["expire_points"] == "ok" and states["webhooks"] == "never"
    assert "<code>KeyError</code>" in page.text
    assert 'data-nav="jobs"' in page.text
    admin.headers["Accept-Language"] = "zh-CN"
    assert "从未运行" in admin.get("/console/admin/jobs").text
    clerk = staff("clerk")
    assert clerk.get("/console/admin/jobs").status_code == 403
    assert 'data-nav="jobs"' not in clerk.get("/console/").text
