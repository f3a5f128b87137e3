"""Risk review of earning, after the fact: the hourly pass reads recent orders and manual
credits in a few set-based statements, applies the earning rules and opens one review per
order (or manual credit) whose score reaches ``earning_review_threshold``. The order write
path is not touched. Rejecting a review takes the points back through a manual adjustment
(the ledger's approval limits apply). Flushes, never commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.db import advisory_lock
from patron.ledger import flows, queries
from patron.ledger import service as ledger
from patron.ledger.models import PointsAdjustment, PointsRefund
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders.models import Order, OrderReturn
from patron.program import service as program
from patron.risk import domain
from patron.risk.models import MemberFlag, RiskReview
from patron.webhooks import events

ACTION: Final = "earning"  # ``RiskReview.action`` of an earning review
ORDER: Final = "order"
CREDIT: Final = "adjustment"
#: the reason of the clawback posting that cancels a rejected order's pending points
CANCEL_REASON: Final = "risk review "
SCAN_CAP: Final = 200_000  # orders one pass reads for the sliding windows
CHUNK: Final = 500


@dataclass(slots=True)
class Item:
    """An order or a manual credit the rules looked at."""

    kind: str  # order | adjustment
    id: int
    member_id: int
    points: int
    store_code: str | None = None
    rules: set[str] = field(default_factory=set)

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"


def _seconds(at: datetime) -> float:
    return at.timestamp()


def _orders(session: Session, s: domain.RiskSettings, now: datetime) -> dict[int, Item]:
    """Velocity of members and bursts at stores over the orders of the scan window: one read,
    then sliding windows in memory."""
    since = now - timedelta(hours=s.earn_scan_hours)
    rows = session.execute(
        select(Order.id, Order.member_id, Order.store_code, Order.ordered_at, Order.points_earned)
        .where(
            # the business date (a day wider than any timezone) reaches the dashboard's index
            Order.business_date >= (since - timedelta(days=1)).date(),
            Order.ordered_at >= since,
            Order.ordered_at <= now,
            Order.points_earned > 0,
        )
        .order_by(Order.ordered_at.desc(), Order.id.desc())  # past the cap: the newest
        .limit(SCAN_CAP)
    ).all()
    items = {
        int(r.id): Item(ORDER, int(r.id), int(r.member_id), int(r.points_earned), r.store_code)
        for r in rows
    }
    by_member = sorted(
        (domain.Stamp(int(r.id), int(r.member_id), int(r.member_id), _seconds(r.ordered_at))
         for r in rows),
        key=lambda x: (x.key, x.at_seconds, x.order_id),
    )  # fmt: skip
    for oid in domain.over_in_window(by_member, 3600, s.earn_member_per_hour, distinct=False):
        items[oid].rules.add("earning_velocity")
    by_store = sorted(
        (domain.Stamp(int(r.id), r.store_code, int(r.member_id), _seconds(r.ordered_at))
         for r in rows if r.store_code),
        key=lambda x: (str(x.key), x.at_seconds, x.order_id),
    )  # fmt: skip
    burst = domain.over_in_window(
        by_store, s.earn_store_minutes * 60, s.earn_store_members, distinct=True
    )
    for oid in burst:
        items[oid].rules.add("store_burst")
    return items


def _new_members(session: Session, s: domain.RiskSettings, now: datetime) -> dict[int, Item]:
    """Members who joined recently and earned at least ``earn_new_member_points`` within
    ``earn_new_member_hours`` of joining: each such order."""
    joined = now - timedelta(hours=s.earn_scan_hours + s.earn_new_member_hours)
    rows = session.execute(
        select(
            Order.id,
            Order.member_id,
            Order.store_code,
            Order.ordered_at,
            Order.points_earned,
            Member.created_at,
        )
        .join(Member, Member.id == Order.member_id)
        .where(Member.created_at >= joined, Order.points_earned > 0, Order.ordered_at <= now)
    ).all()
    early: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        if r.ordered_at < r.created_at + timedelta(hours=s.earn_new_member_hours):
            early[int(r.member_id)].append(r)
    out: dict[int, Item] = {}
    for mid, orders in early.items():
        if sum(int(o.points_earned) for o in orders) >= s.earn_new_member_points:
            for o in orders:
                out[int(o.id)] = Item(
                    ORDER, int(o.id), mid, int(o.points_earned), o.store_code, {"new_member_earns"}
                )
    return out


def _returned(session: Session, s: domain.RiskSettings, now: datetime) -> dict[int, Item]:
    """Earn-and-return cycling: members whose returns in ``earn_return_days`` took back at
    least ``earn_return_points`` points (earned, then given back with the goods): each
    returned order. An ordinary partial return takes back little and stays below."""
    since = now - timedelta(days=s.earn_return_days)
    rows = session.execute(
        select(
            Order.id,
            Order.member_id,
            Order.store_code,
            Order.points_earned,
            func.sum(OrderReturn.points_clawed).label("clawed"),
        )
        .join(OrderReturn, OrderReturn.order_id == Order.id)
        .where(OrderReturn.returned_at >= since, OrderReturn.returned_at <= now)
        .group_by(Order.id, Order.member_id, Order.store_code, Order.points_earned)
    ).all()
    per: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        per[int(r.member_id)].append(r)
    out: dict[int, Item] = {}
    for mid, orders in per.items():
        if sum(int(o.clawed or 0) for o in orders) >= s.earn_return_points:
            for o in orders:
                out[int(o.id)] = Item(
                    ORDER, int(o.id), mid, int(o.points_earned), o.store_code, {"earn_and_return"}
                )
    return out


def _credits(session: Session, s: domain.RiskSettings, now: datetime) -> list[Item]:
    """Manual credits by staff members who credited at least ``unusual_adjust_points`` in
    ``adjust_days`` (the redemption rule's limits): each credit."""
    applied = (
        PointsAdjustment.ledger == "points",
        PointsAdjustment.status == "applied",
        PointsAdjustment.amount > 0,
        PointsAdjustment.created_at >= now - timedelta(days=s.adjust_days),
        PointsAdjustment.created_at <= now,
    )
    heavy = (
        select(PointsAdjustment.requested_by_key)
        .where(*applied)
        .group_by(PointsAdjustment.requested_by_key)
        .having(func.sum(PointsAdjustment.amount) >= s.unusual_adjust_points)
    )
    rows = session.execute(
        select(PointsAdjustment.id, PointsAdjustment.member_id, PointsAdjustment.amount).where(
            *applied, PointsAdjustment.requested_by_key.in_(heavy)
        )
    ).all()
    return [
        Item(CREDIT, int(r.id), int(r.member_id), int(r.amount), None, {"unusual_adjustments"})
        for r in rows
    ]


def assess(session: Session, s: domain.RiskSettings, now: datetime) -> list[Item]:
    """Every order and manual credit the earning rules flag, with the rules that fired (the
    score is ``domain.earning_score`` of them)."""
    items = _orders(session, s, now)
    for extra in (_new_members(session, s, now), _returned(session, s, now)):
        for oid, it in extra.items():
            items.setdefault(oid, it).rules.update(it.rules)
    credits = _credits(session, s, now)
    flagged = {
        int(m)
        for m in session.scalars(
            select(MemberFlag.member_id).where(MemberFlag.rule == "shared_phone_prefix")
        )
    }
    # a member on a crowded phone prefix: each of their orders and credits the pass reads
    for it in [*items.values(), *credits]:
        if it.member_id in flagged:
            it.rules.add("shared_phone_prefix")
    return [it for it in items.values() if it.rules] + credits


def detect(session: Session, actor: Principal, now: datetime) -> int:
    """Open a review for each flagged order or credit over the threshold that has none yet
    (a rerun opens nothing twice). Returns how many were opened."""
    s = _settings(session)
    if not s.enabled:
        return 0
    advisory_lock(session, "risk:earning")  # two passes at once would open twins
    threshold = s.earning_review_threshold
    due = [it for it in assess(session, s, now) if domain.earning_score(it.rules) >= threshold]
    if not due:
        return 0
    seen: set[str] = set()
    subjects = sorted({it.subject for it in due})
    for i in range(0, len(subjects), CHUNK):
        seen.update(
            session.scalars(
                select(RiskReview.subject).where(
                    RiskReview.action == ACTION, RiskReview.subject.in_(subjects[i : i + CHUNK])
                )
            )
        )
    fresh = sorted((it for it in due if it.subject not in seen), key=lambda x: (x.kind, x.id))
    member_nos = {
        int(mid): no
        for mid, no in session.execute(
            select(Member.id, Member.member_no).where(Member.id.in_({it.member_id for it in fresh}))
        )
    }
    for it in fresh:
        rules = sorted(it.rules, key=list(domain.EARNING_WEIGHTS).index)
        row = RiskReview(
            member_id=it.member_id,
            action=ACTION,
            subject=it.subject,
            points=it.points,
            store_code=it.store_code,
            device=None,
            score=domain.earning_score(rules),
            rules=rules,
            decision="review",
            status="pending",
            created_at=now,
            expires_at=now,
        )
        session.add(row)
        session.flush()
        after = {"score": row.score, "rules": rules, "decision": "review", "subject": it.subject}
        audit.record(
            session, actor, "risk.review_open", "risk_review", str(row.id), None, after, at=now
        )
        events.emit(
            session,
            "risk.review.opened",
            {"review_id": row.id, "member_no": member_nos.get(it.member_id), **after},
            now,
            member_id=it.member_id,
        )
    return len(fresh)


def _settings(session: Session) -> domain.RiskSettings:
    return program.get_section(session, domain.SECTION, domain.RiskSettings)


@dataclass(frozen=True, slots=True)
class Clawed:
    owed: int  # the points the order or credit still holds for the member
    taken: int  # what the adjustment takes back (no more than the member has now)
    adjustment_id: int | None
    adjustment_status: str | None  # applied, or pending_approval above the approval limit
    #: the order's points still pending (its return window): their hold is cancelled at once
    pending_cancelled: int = 0


def _source(session: Session, review: RiskReview) -> tuple[Order | None, str]:
    """The reviewed order (None for a credit) and its ledger source id."""
    kind, _, ident = review.subject.partition(":")
    if kind != ORDER:
        return None, ""
    order = session.get(Order, int(ident))
    return order, f"{order.source}:{order.external_id}" if order is not None else ""


def owed(session: Session, review: RiskReview) -> tuple[int, str]:
    """The points the reviewed order (net of what its returns took back) or credit gave, and
    how it is named."""
    kind, _, ident = review.subject.partition(":")
    if kind == ORDER:
        order, source_id = _source(session, review)
        if order is None:
            return 0, review.subject
        earned = ledger.earned_by_source(session, review.member_id, "order", source_id)
        returned = session.scalar(
            select(func.coalesce(func.sum(PointsRefund.points_clawed), 0)).where(
                PointsRefund.member_id == review.member_id,
                PointsRefund.source_type == "order",
                PointsRefund.source_id == source_id,
            )
        )
        return max(earned - int(returned or 0), 0), f"order {order.external_id}"
    credit = session.get(PointsAdjustment, int(ident))
    if credit is None or credit.status != "applied":
        return 0, review.subject
    return max(int(credit.amount), 0), f"manual credit {credit.id}"


def claw_back(session: Session, ctx: Ctx, review: RiskReview) -> Clawed:
    """Take back what the rejected order or credit gave. An order's points still pending are
    not the member's yet: their hold is cancelled at once (a clawback posting, as a return
    does), so they are never released. What was released goes back as a manual deduction of
    the ledger's own flow (audited; above the approval limit it waits for a second approver).
    Points the member already spent are not taken: no debt is made."""
    points, name = owed(session, review)
    if points <= 0:
        return Clawed(0, 0, None, None)
    ledger.begin(session, ctx, review.member_id)  # lock and settle first
    cancelled = 0
    order, source_id = _source(session, review)
    if order is not None:
        held = ledger.pending_of_source(session, review.member_id, "order", source_id)
        cancelled = min(points, held)
        if cancelled:
            ledger.clawback_points(
                session,
                ctx,
                review.member_id,
                cancelled,
                source_type="order",
                source_id=source_id,
                refund_id=f"risk-review-{review.id}",
                reason=f"{CANCEL_REASON}{review.id}",
            )
    rest = points - cancelled
    available = queries.balance(session, review.member_id, ctx.now).available
    take = min(rest, max(available, 0))
    if take <= 0:
        return Clawed(points, 0, None, None, cancelled)
    row = flows.request_adjustment(
        session,
        ctx,
        review.member_id,
        ledger="points",
        amount=-take,
        reason=f"Risk review {review.id}: points of {name} taken back",
    )
    return Clawed(points, take, row.id, row.status, cancelled)


@dataclass(frozen=True, slots=True)
class Named:
    """How the queue names an earning review's order or manual credit."""

    kind: str  # order | adjustment
    ref: str  # the order's external id, or the credit's number
    at: datetime | None
    source: str | None = None  # the order's source (pos, shop …)


def describe(session: Session, reviews: list[RiskReview]) -> dict[int, Named]:
    """The orders and credits of the earning reviews among ``reviews`` (two reads at most)."""
    wanted: dict[str, dict[int, int]] = {ORDER: {}, CREDIT: {}}
    for r in reviews:
        kind, _, ident = r.subject.partition(":")
        if r.action == ACTION and kind in wanted and ident.isdigit():
            wanted[kind][int(ident)] = r.id
    out: dict[int, Named] = {}
    if wanted[ORDER]:
        for oid, ext, source, at in session.execute(
            select(Order.id, Order.external_id, Order.source, Order.ordered_at).where(
                Order.id.in_(wanted[ORDER])
            )
        ):
            out[wanted[ORDER][int(oid)]] = Named(ORDER, ext, at, source)
    if wanted[CREDIT]:
        for aid, at in session.execute(
            select(PointsAdjustment.id, PointsAdjustment.created_at).where(
                PointsAdjustment.id.in_(wanted[CREDIT])
            )
        ):
            out[wanted[CREDIT][int(aid)]] = Named(CREDIT, str(aid), at)
    return out
