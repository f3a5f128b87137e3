"""A campaign's results: participants, orders, sales, points, cost and ROI against its control
group, with the uplift's confidence intervals (``campaigns.experiment``).

Orders count when they fall on a business date the schedule was on, inside the campaign's
period (up to today), by members of the audience; each member is in the treatment or the control
group by the experiment's hash. One grouped query returns every audience member with their
orders and spend; the split and the statistics are done in memory.

The cost is the points given at their cost, the coupons the campaign gave that were redeemed
(their discount: what the retailer gave up on those orders) and the operator's other cost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from patron.campaigns import domain, experiment
from patron.campaigns import service as campaigns
from patron.campaigns.models import Campaign, CampaignAction, CampaignParticipation
from patron.coupons.models import Coupon
from patron.orders.models import Order


@dataclass(frozen=True, slots=True)
class GroupFigures:
    members: int
    buyers: int
    orders: int
    sales_fen: int

    @property
    def conversion(self) -> float:
        return self.buyers / self.members if self.members else 0.0

    @property
    def spend_per_member_fen(self) -> int:
        return self.sales_fen // self.members if self.members else 0


@dataclass(frozen=True, slots=True)
class Results:
    code: str
    first_day: date | None
    last_day: date | None
    participants: int
    treatment: GroupFigures
    control: GroupFigures
    points: int
    #: coupons the campaign issued (to its audience or with its actions' rewards) then redeemed
    coupons_redeemed: int
    coupon_cost_fen: int
    cost_fen: int
    incremental_sales_fen: int | None
    roi: float | None
    uplift: experiment.Uplift
    stratified: experiment.Interval | None


def on_days(c: Campaign, today: date, created: date) -> list[date]:
    """The business dates the schedule was on, from its start (or creation) to today."""
    schedule = campaigns.schedule_of(c)
    first, last = domain.period(schedule)
    start = first or created
    end = min(last or today, today)
    days: list[date] = []
    day = start
    while day <= end and len(days) <= 1_000:
        if domain.is_on(schedule, day):
            days.append(day)
        day += timedelta(days=1)
    return days


def _given_by(session: Session, c: Campaign) -> ColumnElement[bool]:
    """The coupons a campaign gave: its audience issues (key ``campaign:CODE`` or
    ``campaign:CODE:REF``) and the coupons of its actions' rewards (``action:ID:REF``)."""
    own = f"campaign:{c.code}"
    given: list[ColumnElement[bool]] = [
        (Coupon.reason == "campaign")
        & ((Coupon.issue_key == own) | Coupon.issue_key.startswith(own + ":", autoescape=True))
    ]
    for action_id in session.scalars(
        select(CampaignAction.id).where(CampaignAction.campaign_id == c.id)
    ):
        given.append(
            (Coupon.reason == "action") & Coupon.issue_key.startswith(f"action:{action_id}:")
        )
    return or_(*given)


def coupon_cost(session: Session, c: Campaign) -> tuple[int, int]:
    """(coupons redeemed, their discount in fen) of the coupons the campaign gave."""
    n, fen = session.execute(
        select(func.count(Coupon.id), func.coalesce(func.sum(Coupon.discount_fen), 0)).where(
            Coupon.status == "redeemed", _given_by(session, c)
        )
    ).one()
    return int(n), int(fen)


def results(session: Session, c: Campaign, *, today: date, tz: ZoneInfo) -> Results:
    settings = campaigns.get_settings(session)
    days = on_days(c, today, c.created_at.astimezone(tz).date())
    audience = campaigns.audience_filter(session, campaigns.audience_of(c), tz).subquery()
    spend = (
        select(
            Order.member_id.label("member_id"),
            func.count(Order.id).label("orders"),
            func.coalesce(func.sum(Order.paid_fen - Order.refunded_fen), 0).label("sales"),
        )
        .where(Order.business_date.in_(days), Order.status != "cancelled")
        .group_by(Order.member_id)
        .subquery()
    )
    rows = session.execute(
        select(
            audience.c.member_id,
            audience.c.tier,
            func.coalesce(spend.c.orders, 0),
            func.coalesce(spend.c.sales, 0),
        ).outerjoin(spend, spend.c.member_id == audience.c.member_id)
    ).all()
    by_group: dict[str, list[int]] = {"treatment": [], "control": []}
    orders = {"treatment": 0, "control": 0}
    strata: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    treated_buyers: set[int] = set()
    for member_id, tier, n, sales in rows:
        group = experiment.group_of(c.experiment_key, member_id, c.control_bp)
        by_group[group].append(int(sales))
        orders[group] += int(n)
        strata[tier][0 if group == "treatment" else 1].append(int(sales))
        if group == "treatment" and n:
            treated_buyers.add(int(member_id))
    acted = set(
        session.scalars(
            select(CampaignParticipation.member_id).where(
                CampaignParticipation.campaign_id == c.id,
                CampaignParticipation.group == "treatment",
            )
        )
    )

    def figures(group: str) -> GroupFigures:
        values = by_group[group]
        return GroupFigures(
            len(values), sum(1 for v in values if v > 0), orders[group], sum(values)
        )

    treatment, control = figures("treatment"), figures("control")
    points = campaigns.points_used(session, c.id)
    coupons_redeemed, coupon_fen = coupon_cost(session, c)
    cost = (
        domain.points_cost_fen(points, settings.point_cost_fen_per_100)
        + coupon_fen
        + c.other_cost_fen
    )
    up = experiment.uplift(by_group["treatment"], by_group["control"])
    incremental: int | None = None
    roi: float | None = None
    if control.members and treatment.members:
        # what the treated members bought beyond the control group's rate
        incremental = treatment.sales_fen - control.sales_fen * treatment.members // control.members
        roi = incremental / cost if cost else None
    first, last = (days[0], days[-1]) if days else (None, None)
    return Results(
        code=c.code,
        first_day=first,
        last_day=last,
        participants=len(treated_buyers | acted),
        treatment=treatment,
        control=control,
        points=points,
        coupons_redeemed=coupons_redeemed,
        coupon_cost_fen=coupon_fen,
        cost_fen=cost,
        incremental_sales_fen=incremental,
        roi=roi,
        uplift=up,
        stratified=experiment.stratified_spend_uplift(strata) if control.members else None,
    )
