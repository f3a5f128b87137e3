"""Recording job runs (``job_runs``) and reading them back for /metrics, the console and
``patron doctor``.

A run is recorded in a transaction of its own after the job's own transactions ended, so a
job's work never waits on, or is undone by, its bookkeeping; if the database cannot take the
record (it is the database that failed), the run is logged and the scheduler goes on.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.db import Database
from patron.jobs import domain
from patron.jobs.models import JobRun
from patron.observability import get_logger

log = get_logger("patron.jobs")

HOST = socket.gethostname()[:255]


def record(
    db: Database,
    job: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    error: BaseException | None,
    every_seconds: int | None,
) -> None:
    """Upsert the job's row: last run, its outcome, and one more on its counter. Never
    raises: a run that cannot be recorded is logged instead."""
    ok = error is None
    row = {
        "job": job,
        "every_seconds": every_seconds,
        "last_started_at": started_at,
        "last_finished_at": finished_at,
        "last_ms": max(int((finished_at - started_at).total_seconds() * 1000), 0),
        "last_ok": ok,
        "last_ok_at": finished_at if ok else None,
        "last_failed_at": None if ok else finished_at,
        "last_error": None if ok else type(error).__name__[:120],
        "last_host": HOST,
        "runs_ok": 1 if ok else 0,
        "runs_failed": 0 if ok else 1,
    }
    try:
        with db.unit_of_work() as session:
            insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
            ins = insert(JobRun).values(**row)
            t = JobRun.__table__.c
            session.execute(
                ins.on_conflict_do_update(
                    index_elements=[t.job],
                    set_={
                        # a cron run knows no interval: keep the scheduler's
                        "every_seconds": func.coalesce(ins.excluded.every_seconds, t.every_seconds),
                        "last_started_at": ins.excluded.last_started_at,
                        "last_finished_at": ins.excluded.last_finished_at,
                        "last_ms": ins.excluded.last_ms,
                        "last_ok": ins.excluded.last_ok,
                        "last_ok_at": func.coalesce(ins.excluded.last_ok_at, t.last_ok_at),
                        "last_failed_at": func.coalesce(
                            ins.excluded.last_failed_at, t.last_failed_at
                        ),
                        "last_error": ins.excluded.last_error,
                        "last_host": ins.excluded.last_host,
                        "runs_ok": t.runs_ok + ins.excluded.runs_ok,
                        "runs_failed": t.runs_failed + ins.excluded.runs_failed,
                    },
                )
            )
    except Exception as exc:  # the database is what failed; the scheduler must go on
        log.warning("job_run_not_recorded", job=job, error_type=type(exc).__name__)


@dataclass(frozen=True)
class JobStatus:
    """A job as an operator sees it: its last run (None if never recorded) and its state."""

    job: str
    every_seconds: int | None
    run: JobRun | None
    state: domain.State


def statuses(session: Session, schedule: Mapping[str, int], now: datetime) -> list[JobStatus]:
    """Every scheduled job (``schedule``: name → interval), recorded or not, and any other job
    recorded (run from cron only), by name."""
    runs = {r.job: r for r in session.scalars(select(JobRun))}
    out = []
    for name in sorted(set(schedule) | set(runs)):
        run = runs.get(name)
        every = (run.every_seconds if run else None) or schedule.get(name)
        out.append(
            JobStatus(
                job=name,
                every_seconds=every,
                run=run,
                state=domain.state_of(
                    last_ok=run.last_ok if run else None,
                    last_ok_at=run.last_ok_at if run else None,
                    every_seconds=every if run and run.every_seconds else None,
                    now=now,
                ),
            )
        )
    return out
