"""Business-day arithmetic: storage is UTC, business days are in the configured timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError


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


# ---- accepted date-times ---------------------------------------------------------------------

#: Every date-time Patron accepts lies in [EARLIEST, LATEST] (UTC). Far enough on both sides
#: for any retail history or plan; near enough that moving a value to any time zone can never
#: leave the range datetime supports (year 1 at +00:01 or year 9999 at -23:59 overflow).
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
OUT_OF_RANGE: Final = "datetime_out_of_range"


def check_bounded(value: datetime) -> datetime:
    """Refuse an aware ``value`` outside [EARLIEST, LATEST]; return it unchanged otherwise.

    The offset is kept (not converted to UTC here) because stored content hashes of orders and
    returns were taken over the value as sent; after this check, converting it is safe."""
    # Compare the wall-clock year before converting: the conversion itself is what overflows.
    if not EARLIEST.year - 1 <= value.year <= LATEST.year or not (
        EARLIEST <= value.astimezone(UTC) <= LATEST
    ):
        raise PydanticCustomError(
            OUT_OF_RANGE,
            "must be between {earliest} and {latest} (UTC)",
            {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
        )
    return value


#: An aware date-time within [EARLIEST, LATEST]: use it for every date-time the API accepts,
#: in bodies and query parameters alike.
BoundedDateTime = Annotated[AwareDatetime, AfterValidator(check_bounded)]
