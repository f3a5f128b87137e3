"""Scheduled segment jobs: the full recompute of rule tags, the after-order recompute and the
daily lifecycle stage run. Each owns its transaction."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from patron.db import Database
from patron.segments import lifecycle, tags


def run_tags(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, object]:
    with db.unit_of_work() as session:
        done = tags.recompute_all(session, now=now, tz=tz)
    return {r.tag: {"added": r.added, "removed": r.removed} for r in done}


def run_tags_after_orders(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, object]:
    with db.unit_of_work() as session:
        done = tags.recompute_after_orders(session, now=now, tz=tz)
    return {r.tag: {"added": r.added, "removed": r.removed} for r in done}


def run_stages(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, object]:
    with db.unit_of_work() as session:
        run = lifecycle.run_stages(session, now=now, tz=tz)
    return {"day": run.day.isoformat(), "changed": run.changed}
