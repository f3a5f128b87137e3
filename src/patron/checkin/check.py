"""``patron check`` for check-ins: each query returns the offending rows only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from patron.checkin.models import CheckIn
from patron.coupons.models import Coupon
from patron.ledger.store import dialect

LIMIT = 100  # violations reported per check
#: "checkin:" then the check-in's business day (YYYY-MM-DD)
_DAY_AT, _DAY_LEN = len("checkin:") + 1, 10


def run_check(
    session: Session,
    *,
    now: datetime | None = None,  # noqa: ARG001 - the registry's signature
    member_id: int | None = None,
) -> list[str]:
    """A coupon given for a check-in names a check-in of its member on that day."""
    day: Any = func.substr(Coupon.issue_key, _DAY_AT, _DAY_LEN)
    if dialect(session) == "postgresql":
        day = cast(day, Date)
    only = Coupon.member_id == member_id if member_id is not None else literal(True)
    checked_in = exists().where(CheckIn.member_id == Coupon.member_id, CheckIn.business_date == day)
    rows = session.execute(
        select(Coupon.code, Coupon.member_id, Coupon.issue_key)
        .where(only, Coupon.reason == "checkin", ~checked_in)
        .order_by(Coupon.id)
        .limit(LIMIT)
    )
    return [
        f"coupon {code} was given for a check-in ({key}) that member {mid} did not make"
        for code, mid, key in rows
    ]
