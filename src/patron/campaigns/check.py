"""``patron check`` for campaigns: budgets and action caps hold, every reward has its posting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from patron.campaigns import domain, recall, referrals
from patron.campaigns import service as campaigns
from patron.campaigns.models import (
    Campaign,
    CampaignAction,
    CampaignActionGrant,
    Contest,
    ContestEntry,
    EventRegistration,
    MemberEvent,
    Referral,
)
from patron.coupons.models import Coupon
from patron.ledger.models import PointsPosting
from patron.orders.models import RuleBudgetUsage


def run_check(
    session: Session, *, now: datetime | None = None, member_id: int | None = None
) -> list[str]:
    del now  # the invariants hold at every instant
    out: list[str] = []
    settings = campaigns.get_settings(session)
    if member_id is None:
        granted = dict(
            session.execute(
                select(CampaignAction.campaign_id, func.sum(CampaignActionGrant.points))
                .join(CampaignAction, CampaignAction.id == CampaignActionGrant.action_id)
                .where(CampaignAction.campaign_id.is_not(None))
                .group_by(CampaignAction.campaign_id)
            ).all()
        )
        used = dict(
            session.execute(select(RuleBudgetUsage.rule_id, RuleBudgetUsage.points_used)).all()
        )
        for c in session.scalars(select(Campaign).order_by(Campaign.id)):
            cap = campaigns.points_cap(c, settings)
            spent = int(used.get(domain.window_id(c.id), 0))
            if cap is not None and spent > cap:
                out.append(
                    f"Campaign {c.code} has given {spent} points, more than its cap of {cap}."
                )
            rewards = int(granted.get(c.id) or 0)
            if cap is not None and spent < rewards:
                out.append(
                    f"Campaign {c.code}'s budget counts {spent} points but its actions gave "
                    f"{rewards}."
                )
    grants = select(
        CampaignActionGrant.action_id,
        CampaignActionGrant.member_id,
        CampaignActionGrant.business_date,
        func.count(CampaignActionGrant.id).label("n"),
    ).group_by(
        CampaignActionGrant.action_id,
        CampaignActionGrant.member_id,
        CampaignActionGrant.business_date,
    )
    if member_id is not None:
        grants = grants.where(CampaignActionGrant.member_id == member_id)
    actions = {a.id: a for a in session.scalars(select(CampaignAction))}
    totals: dict[tuple[int, int], int] = {}
    for action_id, mid, day, n in session.execute(grants):
        a = actions[action_id]
        totals[(action_id, mid)] = totals.get((action_id, mid), 0) + int(n)
        if a.daily_cap is not None and n > a.daily_cap:
            out.append(
                f"Member {mid} was rewarded {n} times for {a.code} on {day}; the daily cap is "
                f"{a.daily_cap}."
            )
    for (action_id, mid), n in sorted(totals.items()):
        a = actions[action_id]
        if a.total_cap is not None and n > a.total_cap:
            out.append(
                f"Member {mid} was rewarded {n} times for {a.code}; the total cap is {a.total_cap}."
            )
    missing = (
        select(CampaignActionGrant.id, CampaignActionGrant.member_id, CampaignActionGrant.points)
        .outerjoin(PointsPosting, PointsPosting.id == CampaignActionGrant.posting_id)
        .where(
            CampaignActionGrant.points > 0,
            (PointsPosting.id.is_(None))
            | (
                PointsPosting.available_delta + PointsPosting.pending_delta
                != CampaignActionGrant.points
            )
            | (PointsPosting.member_id != CampaignActionGrant.member_id),
        )
    )
    if member_id is not None:
        missing = missing.where(CampaignActionGrant.member_id == member_id)
    for grant_id, mid, points in session.execute(missing):
        out.append(
            f"Action reward {grant_id} of member {mid} ({points} points) has no matching posting."
        )
    out.extend(_referrals(session, member_id))
    out.extend(_reward_coupons(session, member_id))
    out.extend(_contests(session, member_id))
    if member_id is None:
        out.extend(_events(session))
        out.extend(recall.violations(session))
    return out


def _contests(session: Session, member_id: int | None) -> list[str]:
    """A winner is approved and paid once (its posting: the member's, the contest's points);
    an entry that has not won has no reward; a contest has at most ``max_winners`` winners."""
    out: list[str] = []
    bad = (
        select(ContestEntry.id, ContestEntry.member_id, Contest.code)
        .join(Contest, Contest.id == ContestEntry.contest_id)
        .outerjoin(PointsPosting, PointsPosting.id == ContestEntry.posting_id)
        .where(
            (ContestEntry.winner & (ContestEntry.status != "approved"))
            | (~ContestEntry.winner & ContestEntry.posting_id.is_not(None))
            | (
                ContestEntry.winner
                & (Contest.reward_points > 0)
                & (
                    PointsPosting.id.is_(None)
                    | (PointsPosting.member_id != ContestEntry.member_id)
                    | (
                        PointsPosting.available_delta + PointsPosting.pending_delta
                        != Contest.reward_points
                    )
                )
            )
        )
        .order_by(ContestEntry.id)
        .limit(100)
    )
    if member_id is not None:
        bad = bad.where(ContestEntry.member_id == member_id)
    for entry_id, mid, code in session.execute(bad):
        out.append(
            f"Entry {entry_id} of member {mid} in contest {code} is not a winner paid once "
            "with the contest's points, approved."
        )
    if member_id is None:
        won = (
            select(ContestEntry.contest_id, func.count().label("n"))
            .where(ContestEntry.winner)
            .group_by(ContestEntry.contest_id)
            .subquery()
        )
        for code, n, most in session.execute(
            select(Contest.code, won.c.n, Contest.max_winners)
            .join(won, won.c.contest_id == Contest.id)
            .where(won.c.n > Contest.max_winners)
        ):
            out.append(f"Contest {code} has {n} winners; it has {most} places.")
    return out


def _events(session: Session) -> list[str]:
    """No event past its capacity; its counter equals the places its registrations hold."""
    out: list[str] = []
    held = dict(
        session.execute(
            select(EventRegistration.event_id, func.count(EventRegistration.id))
            .where(EventRegistration.status.in_(("registered", "attended", "no_show")))
            .group_by(EventRegistration.event_id)
        ).all()
    )
    for e in session.scalars(select(MemberEvent).order_by(MemberEvent.id)):
        n = int(held.get(e.id, 0))
        if n > e.capacity:
            out.append(f"Event {e.code} holds {n} places, more than its capacity of {e.capacity}.")
        if n != e.registered:
            out.append(
                f"Event {e.code} counts {e.registered} places but its registrations hold {n}."
            )
    return out


def _referrals(session: Session, member_id: int | None) -> list[str]:
    """No referrer past the cap; a rewarded referral's points are in the ledger, once."""
    out: list[str] = []
    cap = referrals.get_settings(session).max_per_referrer
    counts = select(Referral.referrer_id, func.count(Referral.id)).where(
        Referral.status.in_(("rewarded", "clawed_back"))
    )
    if member_id is not None:
        counts = counts.where(Referral.referrer_id == member_id)
    for referrer, n in session.execute(counts.group_by(Referral.referrer_id)):
        if n > cap:
            out.append(f"Member {referrer} was rewarded for {n} referrals; the cap is {cap}.")
    earned = (
        select(PointsPosting.source_id, func.sum(PointsPosting.available_delta))
        .where(PointsPosting.source_type == referrals.SOURCE_TYPE, PointsPosting.kind == "earn")
        .group_by(PointsPosting.source_id)
    )
    given = {str(k): int(v or 0) for k, v in session.execute(earned)}
    rows = select(Referral).where(Referral.status.in_(("rewarded", "clawed_back")))
    if member_id is not None:
        rows = rows.where((Referral.referrer_id == member_id) | (Referral.referee_id == member_id))
    for r in session.scalars(rows):
        for side, points in (("referrer", r.referrer_points), ("referee", r.referee_points)):
            if given.get(f"{r.id}:{side}", 0) != points:
                out.append(
                    f"Referral {r.id} records {points} points for the {side}, but the ledger "
                    f"holds {given.get(f'{r.id}:{side}', 0)}."
                )
    return out


def _reward_coupons(session: Session, member_id: int | None) -> list[str]:
    """A coupon given by an action names a reward of its member (the key carries the action
    and the reference); one given by a referral names a rewarded (or clawed back) referral
    with its member on that side; a clawed-back referral leaves no coupon unused."""
    out: list[str] = []
    action_key = (
        literal("action:")
        + cast(CampaignActionGrant.action_id, String)
        + literal(":")
        + CampaignActionGrant.ref
    )
    orphans = select(Coupon.code, Coupon.member_id).where(
        Coupon.reason == "action",
        ~exists().where(
            CampaignActionGrant.member_id == Coupon.member_id, action_key == Coupon.issue_key
        ),
    )
    side_key = literal("referral:") + cast(Referral.id, String) + literal(":")
    of_referral = or_(
        and_(
            Coupon.member_id == Referral.referrer_id,
            Coupon.issue_key == side_key + literal("referrer"),
        ),
        and_(
            Coupon.member_id == Referral.referee_id,
            Coupon.issue_key == side_key + literal("referee"),
        ),
    )
    stray = select(Coupon.code, Coupon.member_id).where(
        Coupon.reason == "referral",
        ~exists().where(of_referral, Referral.status.in_(("rewarded", "clawed_back"))),
    )
    unused = (
        select(Coupon.code, Referral.id)
        .join(Referral, of_referral)
        .where(Coupon.reason == "referral", Coupon.status == "issued")
        .where(Referral.status == "clawed_back")
    )
    if member_id is not None:
        orphans = orphans.where(Coupon.member_id == member_id)
        stray = stray.where(Coupon.member_id == member_id)
        unused = unused.where(Coupon.member_id == member_id)
    for code, mid in session.execute(orphans):
        out.append(f"Coupon {code} of member {mid} was given for an action it was not rewarded.")
    for code, mid in session.execute(stray):
        out.append(f"Coupon {code} of member {mid} names no rewarded referral of that member.")
    for code, rid in session.execute(unused):
        out.append(f"Coupon {code} is still usable though referral {rid} was clawed back.")
    return out
