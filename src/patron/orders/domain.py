"""Pure rules about orders (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta

from patron.errors import Invalid


def check_backdating(ordered_at: datetime, now: datetime, *, max_days: int, earn: bool) -> None:
    """An order that earns may be at most ``max_days`` old: points and growth for a purchase
    are granted near the time it was made, not for a receipt dated months back. History sent
    with ``earn: false`` is only bound by the accepted date range."""
    if earn and ordered_at < now - timedelta(days=max_days):
        raise Invalid(
            "ordered_at_too_old",
            f"An order that earns may be at most {max_days} days old; send older history with "
            '"earn": false.',
            details={"field": "ordered_at", "max_days": max_days},
        )
