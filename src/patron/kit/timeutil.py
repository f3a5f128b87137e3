"""Business-day arithmetic: storage is UTC, business days are in the configured timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=16)
def business_tz(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def business_date(dt: datetime, tz: ZoneInfo) -> date:
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return dt.astimezone(tz).date()


def as_utc(dt: datetime) -> datetime:
    """Normalise a datetime read back from the database (SQLite drops the zone) to aware UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
