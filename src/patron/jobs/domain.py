"""Pure rules about job runs: when a job counts as behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

State = Literal["ok", "failed", "overdue", "never"]

#: A job is overdue when its last success is older than this many intervals plus the grace
#: below: one missed run is noise (a restart, a long job before it), three are a stopped
#: scheduler or a job that keeps failing.
OVERDUE_INTERVALS: Final = 3
OVERDUE_GRACE: Final = timedelta(minutes=10)


def overdue_after(every_seconds: int) -> timedelta:
    return timedelta(seconds=every_seconds * OVERDUE_INTERVALS) + OVERDUE_GRACE


def state_of(
    *,
    last_ok: bool | None,
    last_ok_at: datetime | None,
    every_seconds: int | None,
    now: datetime,
) -> State:
    """``never``: no run recorded; ``failed``: the last run raised; ``overdue``: no success
    for too long although the last run succeeded (the scheduler stopped); ``ok`` otherwise.
    A job only cron runs (no interval) is never judged overdue."""
    if last_ok is None:
        return "never"
    if not last_ok:
        return "failed"
    if every_seconds and (last_ok_at is None or now - last_ok_at > overdue_after(every_seconds)):
        return "overdue"
    return "ok"
