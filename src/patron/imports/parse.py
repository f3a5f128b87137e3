"""Pure parsers for values found in Chinese POS/ERP exports."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from patron.kit.timeutil import EARLIEST, LATEST

TRUE = frozenset({"1", "true", "t", "yes", "y", "是", "同意", "on"})
FALSE = frozenset({"0", "false", "f", "no", "n", "否", "不同意", "off", ""})
_AMOUNT = re.compile(r"^-?\d+(\.\d{1,2})?$")


class ParseError(ValueError):
    pass


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise ParseError(f"not a yes/no value: {text[:20]!r}")


def parse_fen(text: str) -> int:
    """``"1,299.50"``, ``"¥199"``, ``"199.5"`` → fen, exactly (no floats); at most 2 decimals."""
    t = text.strip().replace(",", "").replace("¥", "").replace("￥", "").replace("元", "")
    if not _AMOUNT.match(t):
        raise ParseError("not an amount in CNY with at most two decimals")
    try:
        value = Decimal(t) * 100
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ParseError("not an amount") from exc
    return int(value)


def parse_date(text: str) -> date:
    t = text.strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"):
        try:
            return datetime.strptime(t, fmt).date()  # noqa: DTZ007 - a date, no time
        except ValueError:
            continue
    raise ParseError("not a date (use YYYY-MM-DD)")


def parse_datetime(text: str, tz: ZoneInfo) -> datetime:
    """Aware timestamps are kept; naive ones are business-local time (POS exports are)."""
    t = text.strip().replace("/", "-")
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        try:
            dt = datetime.combine(parse_date(text), datetime.min.time(), tz)
        except ParseError:
            raise ParseError("not a date-time (use YYYY-MM-DD HH:MM:SS)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    # The API's bounds: year 1 or 9999 with an offset overflows on conversion (a crash of the
    # whole import, not a row error), and a year-1900 registration is a typo, not history.
    try:
        at = dt.astimezone(UTC)
    except OverflowError:
        at = None
    if at is None or not EARLIEST <= at <= LATEST:
        raise ParseError(f"must be between {EARLIEST.date()} and {LATEST.date()}")
    return at
