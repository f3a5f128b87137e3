"""Plan an order in pure code: from the order and the member's facts gathered under the ledger
lock, compute every row the order writes — no I/O here (``orders.writer`` applies plans).

A plan covers the common case: the member's ledger needs no settling (nothing due, no debt) and
earned points are spendable at once (no return window). ``needs_general_path`` says when the
caller must take the general path (``orders.service.record_order``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from patron.ledger import domain as ledger_domain
from patron.ledger.domain import InsufficientPoints, LotView, Take
from patron.ledger.service import PointsSettings
from patron.rules.definitions import EarningRules
from patron.rules.domain import EarnContext, EarningResult, EarnLine, evaluate_order
from patron.tiers import domain as tier_domain
from patron.tiers.domain import TierBenefits, TierLadder

#: the general-path reason recorded on an order taken without earning
NO_EARNING_NOTE = "historical order recorded without earning"


@dataclass(frozen=True, slots=True)
class Settings:
    """The program sections an order reads, loaded once per request."""

    points: PointsSettings
    earning: EarningRules
    ladder: TierLadder


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the member's ledger, orders and tier say, read under the member's ledger lock."""

    member_id: int
    member_no: str
    member_since: datetime
    #: the member's tier row as stored (None: no row, the base tier)
    tier_row_code: str | None
    override_until: datetime | None
    window_growth: int
    orders_so_far: int
    welcome_given: int
    points_today: int
    available: int
    debt: int
    #: pending points due for release or lots due to expire at the order's instant
    settling_due: bool
    #: a posting already holds one of the order's idempotency keys (made by another path)
    keys_taken: bool
    budget_used: dict[str, int]
    #: for birthday-month campaign windows
    birthday: date | None = None


def needs_general_path(facts: MemberFacts, settings: Settings) -> bool:
    """True when the order must take the general path, which settles the ledger first (due
    pending points and lots, debt), holds points for a return window, or replays a posting
    another path made under the order's keys."""
    return (
        facts.settling_due
        or facts.debt > 0
        or facts.keys_taken
        or settings.points.default_pending_days > 0
    )


def member_tier(facts: MemberFacts, ladder: TierLadder) -> tuple[str, TierBenefits]:
    """The tier the member holds (a tier the operator removed counts as the base tier)."""
    code = facts.tier_row_code or ladder.base.code
    for tier in ladder.tiers:
        if tier.code == code:
            return code, tier.benefits
    return ladder.base.code, ladder.base.benefits


def evaluate(
    facts: MemberFacts,
    settings: Settings,
    *,
    occurred_at: datetime,
    lines: tuple[EarnLine, ...],
    tz: ZoneInfo,
) -> EarningResult:
    """The earning of an order by the rules in force (``points_today`` must be of the order's
    business day)."""
    code, benefits = member_tier(facts, settings.ladder)
    return evaluate_order(
        settings.earning,
        EarnContext(
            occurred_at=occurred_at,
            lines=lines,
            tier_code=code,
            tier_multiplier_bp=benefits.points_multiplier_bp,
            member_since=facts.member_since,
            is_first_purchase=facts.orders_so_far == 0,
            welcome_bonus_awarded=facts.welcome_given > 0,
            points_earned_today=facts.points_today,
            budget_used=facts.budget_used,
            member_id=facts.member_id,
            birthday=facts.birthday,
        ),
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class PlanLine:
    line_no: int
    sku: str
    category: str
    quantity: int
    unit_price_fen: int
    discount_fen: int
    net_fen: int
    points_fen: int
    points: int
    paid_fen: int


@dataclass(frozen=True, slots=True)
class OrderInput:
    """An order as checked against the catalogue, with its lines priced and points split."""

    source: str
    external_id: str
    channel: str
    store_code: str | None
    ordered_at: datetime
    lines: tuple[PlanLine, ...]
    #: (method, amount_fen, points)
    payments: tuple[tuple[str, int, int], ...]
    points_used: int
    earn: bool
    digest: str


@dataclass(frozen=True, slots=True)
class Posting:
    kind: str
    key: str
    available_delta: int
    reason: str


@dataclass(frozen=True, slots=True)
class TierMove:
    from_code: str
    to_code: str
    growth: int
    next_evaluation_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    after: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderPlan:
    member_id: int
    member_no: str
    actor: str
    now: datetime
    #: the instant the order's ledger history is dated at: ``now`` for a live order, the
    #: order's own time for an imported one (lot earned and expiry, growth, tier move)
    effective_at: datetime
    order: dict[str, Any]
    lines: tuple[PlanLine, ...]
    payments: tuple[tuple[str, int, int], ...]
    source_type: str
    source_id: str
    spend: Posting | None
    takes: tuple[Take, ...]
    earn: Posting | None
    lot_expires_at: datetime | None
    growth: int
    growth_key: str
    growth_reason: str
    tier_move: TierMove | None
    budget_charges: tuple[tuple[str, int], ...]
    audits: tuple[AuditEntry, ...]


def trace(result: EarningResult | None, reason: str = "") -> dict[str, Any]:
    if result is None:
        return {"points": [], "growth": [], "note": reason}
    return {
        "points": [c.model_dump(mode="json") for c in result.points_trace],
        "growth": [c.model_dump(mode="json") for c in result.growth_trace],
        "base_points": result.base_points,
        "business_date": result.business_date.isoformat(),
        "rule_ids": result.rule_ids(),
    }


def business_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def plan_order(
    data: OrderInput,
    facts: MemberFacts,
    settings: Settings,
    *,
    earning: EarningResult | None,
    open_lots: tuple[LotView, ...],
    actor: str,
    now: datetime,
    tz: ZoneInfo,
    dated_at_order: bool = False,
) -> OrderPlan:
    """Every row one order writes, as the general path (``orders.service.record_order``) would
    write them for a member whose ledger needs no settling. Raises ``InsufficientPoints`` when
    the points payment exceeds the balance (the writer's guarded update enforces it again).

    ``dated_at_order`` (imported history): the lot's expiry counts from the order's time, its
    growth is effective then and a tier move happens then; ``facts.window_growth`` must be the
    growth of the order's qualification window."""
    at = data.ordered_at.astimezone(UTC) if dated_at_order else now
    if data.earn and earning is None:
        raise ValueError("an earning order needs its earning result")
    result = earning if data.earn else None
    source_id = f"{data.source}:{data.external_id}"
    where = f"{data.channel} {data.store_code}" if data.store_code else data.channel
    audits: list[AuditEntry] = []

    spend: Posting | None = None
    takes: tuple[Take, ...] = ()
    if data.points_used:
        points = ledger_domain.validate_points(data.points_used)
        if facts.available < points:
            raise InsufficientPoints(points, facts.available)
        takes = tuple(ledger_domain.allocate(open_lots, points, now=now))
        spend = Posting(
            "redeem",
            f"redeem:order:{source_id}",
            -points,
            f"paid order {data.external_id} ({where})"[:200],
        )
        audits.append(
            AuditEntry("points.spend", {"points": points, "source": f"order:{source_id}"})
        )

    earn: Posting | None = None
    lot_expires_at: datetime | None = None
    growth = 0
    growth_reason = ""
    tier_move: TierMove | None = None
    charges: tuple[tuple[str, int], ...] = ()
    if result is not None and (result.points or result.growth):
        growth = result.growth
        if result.points:
            points = ledger_domain.validate_points(result.points)
            reason = f"order {data.external_id} ({where}): {', '.join(result.rule_ids())}"[:200]
            earn = Posting("earn", f"earn:order:{source_id}", points, reason)
            lot_expires_at = ledger_domain.compute_expiry(at, settings.points.expiry, tz)
            growth_reason = reason
            audits.append(
                AuditEntry(
                    "points.earn",
                    {
                        "points": points,
                        "growth": growth,
                        "source": f"order:{source_id}",
                        "pending_days": None,
                    },
                )
            )
        else:
            growth_reason = f"order {data.external_id}"
        if growth:
            ledger_domain.validate_points(growth, field="growth")
            tier_move = _tier_move(facts, settings.ladder, growth, now, at, tz)
        budgets = settings.earning.budgeted_rules()
        charges = tuple(
            (c.rule_id, c.points)
            for c in result.points_trace
            if c.rule_id in budgets and c.points > 0
        )

    given = {c.rule_id: c.points for c in result.points_trace} if result else {}
    lines = data.lines
    total = sum(ln.net_fen for ln in lines)
    points_fen = sum(ln.points_fen for ln in lines)
    order = {
        "member_id": facts.member_id,
        "source": data.source,
        "external_id": data.external_id,
        "channel": data.channel,
        "store_code": data.store_code,
        "ordered_at": data.ordered_at.astimezone(UTC),
        "business_date": business_date(data.ordered_at, tz),
        "status": "completed",
        "list_total_fen": sum(ln.unit_price_fen * ln.quantity for ln in lines),
        "discount_fen": sum(ln.discount_fen for ln in lines),
        "total_fen": total,
        "points_used": data.points_used,
        "points_fen": points_fen,
        "paid_fen": total - points_fen,
        "points_earned": result.points if result else 0,
        "growth_earned": result.growth if result else 0,
        "welcome_bonus": given.get(settings.earning.welcome.id, 0),
        "first_purchase": given.get(settings.earning.first_purchase.id, 0) > 0,
        "rules_trace": trace(result, "" if data.earn else NO_EARNING_NOTE),
        "content_hash": data.digest,
        "refunded_fen": 0,
        "created_at": now,
    }
    return OrderPlan(
        member_id=facts.member_id,
        member_no=facts.member_no,
        actor=actor[:120],
        now=now,
        effective_at=at,
        order=order,
        lines=lines,
        payments=data.payments,
        source_type="order",
        source_id=source_id,
        spend=spend,
        takes=takes,
        earn=earn,
        lot_expires_at=lot_expires_at,
        growth=growth,
        growth_key=f"earn:order:{source_id}",
        growth_reason=growth_reason[:200],
        tier_move=tier_move,
        budget_charges=charges,
        audits=tuple(audits),
    )


def _tier_move(
    facts: MemberFacts,
    ladder: TierLadder,
    growth: int,
    now: datetime,
    at: datetime,
    tz: ZoneInfo,
) -> TierMove | None:
    """An upgrade reached by this order's growth at ``at`` (never while an override holds the
    tier now)."""
    if facts.override_until is not None and facts.override_until > now:
        return None
    current = facts.tier_row_code or ladder.base.code
    value = facts.window_growth + growth
    up = tier_domain.upgrade_target(ladder, current, value)
    if up is None:
        return None
    return TierMove(
        current, up.code, value, tier_domain.next_evaluation(ladder.qualification_window, at, tz)
    )
