"""``patron check``: every domain's reconciliation, run together.

Each domain that keeps a ledger of its own (points, stock, coupons …) has a ``check`` module
whose function returns violations as sentences (empty = clean). Adding a domain means adding
its function to ``DOMAIN_CHECKS``; the command and the tests call ``run_all``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import import_module

from sqlalchemy.orm import Session

CheckFn = Callable[..., list[str]]

# "module:function"; each takes (session, *, now, member_id) and returns violations.
DOMAIN_CHECKS: tuple[str, ...] = (
    "patron.ledger.check:run_check",
    "patron.mall.check:run_check",
    "patron.coupons.check:run_check",
    "patron.checkin.check:run_check",
    "patron.campaigns.check:run_check",
    "patron.segments.check:run_check",
    "patron.service.check:run_check",
    "patron.journeys.check:run_check",
)


def _load(ref: str) -> CheckFn:
    module, _, name = ref.partition(":")
    fn: CheckFn = getattr(import_module(module), name)
    return fn


def run_all(
    session: Session, *, now: datetime | None = None, member_id: int | None = None
) -> list[str]:
    """Violations of every domain's invariants, in ``DOMAIN_CHECKS`` order."""
    out: list[str] = []
    for ref in DOMAIN_CHECKS:
        out.extend(_load(ref)(session, now=now, member_id=member_id))
    return out
