"""Scheduled service-desk work: the SLA breach sweep and the rounds of scheduled NPS surveys
(each idempotent, one transaction)."""

from __future__ import annotations

from datetime import datetime

from patron.db import Database
from patron.service import surveys, tickets


def run_breaches(db: Database, now: datetime) -> int:
    with db.unit_of_work() as session:
        return tickets.mark_breaches(session, now)


def run_nps_surveys(db: Database, now: datetime, *, base_url: str) -> dict[str, object]:
    with db.unit_of_work() as session:
        done = surveys.send_round(session, now, base_url=base_url)
    return {"round": done.code, "queued": done.queued}
