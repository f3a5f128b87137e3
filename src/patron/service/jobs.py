"""Scheduled service-desk work: the SLA breach sweep (idempotent, one transaction)."""

from __future__ import annotations

from datetime import datetime

from patron.db import Database
from patron.service import tickets


def run_breaches(db: Database, now: datetime) -> int:
    with db.unit_of_work() as session:
        return tickets.mark_breaches(session, now)
