"""Scheduled risk work: the flags of rules over many members (shared phone prefixes)."""

from __future__ import annotations

from datetime import datetime

from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.risk import service


def run_flags(db: Database, cipher: FieldCipher, now: datetime) -> int:
    with db.unit_of_work() as session:
        return service.flag_phone_prefixes(session, cipher, now)
