"""The nightly member scores job (idempotent: a run replaces every row)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.analytics import scores
from patron.analytics.models import ModelRun
from patron.db import Database


def run_scores(
    db: Database,
    now: datetime,
    tz: ZoneInfo,
    *,
    force: bool = True,
    read_db: Database | None = None,
) -> dict[str, object]:
    """Recompute member scores. Without ``force`` it does nothing when today's (business day)
    scores exist already, so the embedded scheduler can call it hourly and it runs once a day.
    With ``read_db`` (the read replica) the history is read there, in one snapshot; the scores
    and the run record are written to ``db``."""
    from patron.ops.replica import snapshot

    today = now.astimezone(tz).date()
    with db.unit_of_work() as session, snapshot(read_db) as reads:
        if not force:
            last = session.scalar(
                select(ModelRun.as_of)
                .where(ModelRun.kind == "scores")
                .order_by(ModelRun.id.desc())
                .limit(1)
            )
            if last == today:
                return {"skipped": f"scores of {today.isoformat()} exist"}
        run = scores.run_scores(session, now=now, tz=tz, reads=reads)
    return {
        "members": run.members,
        "repeat_buyers": run.repeat_buyers,
        "missing": list(run.missing),
    }


def run_alerts(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, object]:
    """Judge the last complete business days' metrics; a rerun raises no alert twice."""
    from patron.analytics import alerts

    with db.unit_of_work() as session:
        new = alerts.check(session, now=now, tz=tz)
        return {"alerts": [alerts.payload(a) for a in new]}
