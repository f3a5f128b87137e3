"""Scheduled risk work: the flags of rules over many members (shared phone prefixes), then the
earning pass over recent orders and manual credits (which reads those flags)."""

from __future__ import annotations

from datetime import datetime

from patron.auth.principal import Principal
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.risk import earning, service


def run_flags(db: Database, cipher: FieldCipher, now: datetime) -> int:
    with db.unit_of_work() as session:
        return service.flag_phone_prefixes(session, cipher, now)


def run_earning(db: Database, now: datetime) -> int:
    """Open the earning reviews due (a rerun opens none twice)."""
    with db.unit_of_work() as session:
        return earning.detect(session, Principal.system("risk"), now)


def run(db: Database, cipher: FieldCipher, now: datetime) -> dict[str, int]:
    """The hourly job: flags first, so the earning pass sees this hour's."""
    flagged = run_flags(db, cipher, now)
    return {"flagged": flagged, "earning_reviews": run_earning(db, now)}
