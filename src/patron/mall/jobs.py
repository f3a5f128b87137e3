"""Scheduled work of the mall, idempotent and committed per batch.

- ``run_release_unclaimed``: a pickup code not verified before it expired (``code_valid_days``
  after it was issued) is released through the same cancel path as a member's or clerk's
  cancel — points and stock back exactly once (the guarded status change decides; a code
  verified or cancelled meanwhile is skipped) — and the member is told (``mall.redemption.
  unclaimed``).
- ``run_markdowns``: the dynamic price of slow movers (``pricing.apply_markdowns``).
- ``run_replenish``: safety stock per gift and warehouse — a short warehouse without an open
  purchase request gets one, to the preferred supplier, with ``mall.stock.low``
  (``replenish.raise_warehouse_requests``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.db import Database
from patron.errors import Conflict
from patron.ledger.service import Ctx
from patron.mall import pricing, redemptions, replenish, service
from patron.mall.models import Redemption
from patron.webhooks import events

BATCH = 200
UNCLAIMED = Principal.system("job:mall-unclaimed")
MARKDOWN = Principal.system("job:mall-markdown")


def release_unclaimed(session: Session, ctx: Ctx, limit: int = BATCH) -> list[str]:
    """Release up to ``limit`` expired, unverified pickup codes; returns their codes."""
    codes = list(
        session.scalars(
            select(Redemption.code)
            .where(
                Redemption.status == "reserved",
                Redemption.delivery == "pickup",
                Redemption.code_expires_at <= ctx.now,
            )
            .order_by(Redemption.id)
            .limit(limit)
        )
    )
    released = []
    for code in codes:
        try:
            r, gift = redemptions.cancel(session, ctx, code, "unclaimed: the code expired")
        except Conflict:
            continue  # verified or cancelled since it was read: nothing to release
        member_no = service.member_no_of(session, r.member_id)
        events.emit(
            session,
            "mall.redemption.unclaimed",
            {
                "member_no": member_no,
                "code": r.code,
                "gift_code": gift.code,
                "quantity": r.quantity,
                "points_returned": r.points,
                "expired_at": r.code_expires_at.isoformat(),
            },
            ctx.now,
            member_id=r.member_id,
        )
        released.append(code)
    return released


def run_release_unclaimed(db: Database, now: datetime, tz: ZoneInfo) -> int:
    total = 0
    while True:
        with db.unit_of_work() as session:
            done = release_unclaimed(session, service.make_ctx(session, UNCLAIMED, now, tz))
            seen = len(done)
        total += seen
        if seen < BATCH:
            return total


def run_markdowns(db: Database, now: datetime, tz: ZoneInfo) -> int:
    with db.unit_of_work() as session:
        return len(pricing.apply_markdowns(session, service.make_ctx(session, MARKDOWN, now, tz)))


def run_replenish(db: Database, now: datetime, tz: ZoneInfo) -> int:
    with db.unit_of_work() as session:
        ctx = service.make_ctx(session, replenish.JOB, now, tz)
        return len(replenish.raise_warehouse_requests(session, ctx))
