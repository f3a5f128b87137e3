"""Views shared by several portal pages: the member's tier with its progress, and the points
balance with the next expiry — assembled from the tiers and ledger services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import segno
from sqlalchemy.orm import Session

from patron.ledger import queries as ledger_queries
from patron.ledger.domain import last_valid_day
from patron.ledger.service import Ctx
from patron.members import card
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.tiers.domain import Tier, TierLadder
from patron.tiers.service import TierState


@dataclass(frozen=True, slots=True)
class TierView:
    tier: Tier
    name: str
    next_tier: Tier | None
    next_name: str
    growth: int
    needed: int
    progress_percent: int
    keep_at: int
    keep_missing: int
    next_evaluation_at: datetime | None
    grace_until: datetime | None
    #: the last business day a hand-set tier holds (shown as such: it ends after that day)
    held_through: date | None = None
    #: held by hand with no end date: no evaluation will move it
    held_indefinitely: bool = False
    #: name of the higher tier the growth already qualifies for while the tier is held below it
    qualified_name: str = ""


def tier_name(tier: Tier, locale: str) -> str:
    return tier.name_zh if locale == "zh_CN" and tier.name_zh else tier.name


def build_tier_view(
    ladder: TierLadder, state: TierState, *, now: datetime, tz: ZoneInfo, locale: str
) -> TierView:
    """What the member sees of ``state``; pure, so the console can preview a hand-set tier
    before saving it with exactly the words the portal will show."""
    index = ladder.index(state.code)
    current = ladder.tiers[index]
    nxt = ladder.tiers[index + 1] if index + 1 < len(ladder.tiers) else None
    prog = tier_domain.progress(ladder, state.code, state.window_growth)
    override = state.override_until
    active = override is not None and override > now
    qualified = (
        tier_domain.qualified_above(ladder, state.code, state.window_growth) if active else None
    )
    return TierView(
        tier=current,
        name=tier_name(current, locale),
        next_tier=nxt,
        next_name=tier_name(nxt, locale) if nxt else "",
        growth=state.window_growth,
        needed=prog.needed,
        progress_percent=prog.progress_bp // 100,
        keep_at=current.keep_at,
        keep_missing=max(current.keep_at - state.window_growth, 0),
        next_evaluation_at=None if active else state.next_evaluation_at,
        grace_until=state.grace_until,
        held_through=tier_domain.held_through(override, tz) if active else None,
        held_indefinitely=active and override is not None and override.year >= 9999,
        qualified_name=tier_name(qualified, locale) if qualified else "",
    )


def tier_view(session: Session, ctx: Ctx, member_id: int, locale: str) -> TierView:
    ladder = tiers.get_ladder(session)
    state = tiers.state(session, ctx, member_id)
    return build_tier_view(ladder, state, now=ctx.now, tz=ctx.tz, locale=locale)


@dataclass(frozen=True, slots=True)
class PointsView:
    available: int
    pending: int
    debt: int
    #: (points, last valid day) of the soonest expiry, if any points will expire
    next_expiry: tuple[int, date] | None
    #: the soonest expiry falls within the reminder period
    expiry_soon: bool
    schedule: list[tuple[int, date]]


def points_view(session: Session, ctx: Ctx, member_id: int) -> PointsView:
    bal = ledger_queries.balance(session, member_id, ctx.now)
    by_day: dict[date, int] = {}
    for expires_at, amount in bal.expiry_schedule:
        day = last_valid_day(expires_at, ctx.tz)
        by_day[day] = by_day.get(day, 0) + amount
    schedule = [(points, day) for day, points in sorted(by_day.items())]
    first = schedule[0] if schedule else None
    today = ctx.now.astimezone(ctx.tz).date()
    soon = first is not None and (first[1] - today).days <= ctx.settings.reminder_days
    return PointsView(
        available=max(bal.available, 0),
        pending=bal.pending,
        debt=bal.debt,
        next_expiry=first,
        expiry_soon=soon,
        schedule=schedule,
    )


@lru_cache(maxsize=4096)
def qr_svg(token: str) -> str:
    """Inline SVG of the card token (cached: a token is shown all minute, by every refresh).
    Sized by the page's CSS through its viewBox."""
    svg: str = segno.make(token, error="m").svg_inline(border=2, omitsize=True)
    return svg


def card_token(member_id: int, key: bytes, now: datetime) -> str:
    return card.issue(member_id, key, now)
