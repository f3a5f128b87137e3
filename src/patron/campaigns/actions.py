"""Actions that earn (SPEC P3, A3): sharing, reviews, surveys, quizzes — each with a daily and
a total cap per member, optionally inside a campaign (its schedule, audience, control group and
budget apply). Every reward is a ledger earning keyed by (action, member, ref): a replay
returns the first reward and writes nothing.

An action may also give a coupon of a template with each reward, issued through the coupons'
service keyed by (action, member, ref) — the points' own natural key — so a replay issues
nothing twice. A coupon the template refuses (sold out, the member's tier, the per-member
limit, paused) leaves the points given and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.campaigns import domain, experiment
from patron.campaigns import service as campaigns
from patron.campaigns.models import Campaign, CampaignAction, CampaignActionGrant
from patron.campaigns.schemas import ActionIn
from patron.coupons import service as coupons
from patron.coupons.models import Coupon, CouponTemplate
from patron.errors import Conflict, NotFound, PatronError
from patron.kit.timeutil import business_date
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.orders.facts import lock_budgets
from patron.orders.models import RuleBudgetUsage
from patron.webhooks import events

SOURCE_TYPE = "campaign_action"


def get_action(session: Session, code: str) -> CampaignAction:
    row = session.scalar(select(CampaignAction).where(CampaignAction.code == code))
    if row is None:
        raise NotFound("action_not_found", f"No action has the code {code!r}.")
    return row


def listing(session: Session) -> list[CampaignAction]:
    return list(session.scalars(select(CampaignAction).order_by(CampaignAction.id)))


def campaign_code(session: Session, action: CampaignAction) -> str | None:
    if action.campaign_id is None:
        return None
    return session.scalar(select(Campaign.code).where(Campaign.id == action.campaign_id))


def create_action(
    session: Session, actor: Principal, data: ActionIn, *, now: datetime
) -> CampaignAction:
    if session.scalar(select(CampaignAction.id).where(CampaignAction.code == data.code)):
        raise Conflict("action_code_taken", f"An action with the code {data.code!r} exists.")
    campaign_id = campaigns.get(session, data.campaign).id if data.campaign else None
    if data.coupon is not None:
        coupons.get_template(session, data.coupon)  # 404 coupon_template_not_found
    row = CampaignAction(
        code=data.code,
        campaign_id=campaign_id,
        kind=data.kind,
        name=data.name,
        points=data.points,
        daily_cap=data.daily_cap,
        total_cap=data.total_cap,
        active=True,
        created_at=now,
        coupon_template=data.coupon,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.action_create",
        "campaign_action",
        row.code,
        None,
        data.model_dump(mode="json"),
        at=now,
    )
    return row


@dataclass(frozen=True, slots=True)
class Grant:
    points: int
    posting_id: int | None
    replayed: bool
    coupon: str | None = None
    coupon_refused: str | None = None


def _eligible_campaign(
    session: Session, ctx: Ctx, action: CampaignAction, member_id: int
) -> Campaign | None:
    if action.campaign_id is None:
        return None
    c = session.get(Campaign, action.campaign_id)
    assert c is not None
    today = business_date(ctx.now, ctx.tz)
    if c.status != "active" or not domain.is_on(campaigns.schedule_of(c), today):
        raise Conflict("campaign_not_running", f"The campaign {c.code!r} is not on today.")
    audience = campaigns.audience_of(c)
    if not campaigns.in_audience(session, audience, ctx.tz, member_id, now=ctx.now):
        raise Conflict("not_in_audience", "This member is not in the campaign's audience.")
    if experiment.group_of(c.experiment_key, member_id, c.control_bp) == "control":
        # the control group does not see the campaign: rewarding it would spoil the test
        raise Conflict("in_control_group", "This member is in the campaign's control group.")
    return c


def record_action(session: Session, ctx: Ctx, code: str, member_id: int, ref: str) -> Grant:
    """Reward one action of a member (409 past a cap, outside the campaign, over budget)."""
    action = get_action(session, code)
    if not action.active:
        raise Conflict("action_inactive", f"The action {code!r} is switched off.")
    campaign = _eligible_campaign(session, ctx, action, member_id)
    # The member's ledger lock first (as orders), then the campaign's budget row.
    ledger.begin(session, ctx, member_id)
    today = business_date(ctx.now, ctx.tz)
    row = session.execute(
        select(
            func.count(CampaignActionGrant.id),
            func.coalesce(
                func.sum(case((CampaignActionGrant.business_date == today, 1), else_=0)), 0
            ),
            func.max(case((CampaignActionGrant.ref == ref, CampaignActionGrant.id), else_=None)),
        ).where(
            CampaignActionGrant.action_id == action.id,
            CampaignActionGrant.member_id == member_id,
        )
    ).one()
    total, done_today, same_id = int(row[0]), int(row[1]), row[2]
    if same_id is not None:
        first = session.get(CampaignActionGrant, same_id)
        assert first is not None
        return Grant(
            first.points,
            first.posting_id,
            replayed=True,
            coupon=_coupon_given(session, action, member_id, ref),
        )
    budget_left: int | None = None
    cap: int | None = None
    if campaign is not None:
        cap = campaigns.points_cap(campaign, campaigns.get_settings(session))
        if cap is not None:
            used = lock_budgets(session, [domain.window_id(campaign.id)], ctx.now)
            budget_left = max(0, cap - used.get(domain.window_id(campaign.id), 0))
    points, reason = domain.action_points(
        action.points,
        done_today=done_today,
        done_total=total,
        daily_cap=action.daily_cap,
        total_cap=action.total_cap,
        budget_left=budget_left,
    )
    if reason == "daily_cap":
        raise Conflict(
            "action_daily_cap", f"This member has done {code!r} as often as allowed today."
        )
    if reason == "total_cap":
        raise Conflict("action_total_cap", f"This member has done {code!r} as often as allowed.")
    if reason == "budget":
        raise Conflict("campaign_budget_exhausted", "The campaign's points budget is used up.")
    posting_id = _give(session, ctx, action, member_id, ref, points)
    coupon, refused = _give_coupon(session, ctx, action, member_id, ref)
    session.add(
        CampaignActionGrant(
            action_id=action.id,
            member_id=member_id,
            ref=ref,
            business_date=today,
            points=points,
            posting_id=posting_id,
            created_at=ctx.now,
        )
    )
    rewarded = events.NewEvent(
        "campaign.action_rewarded",
        {
            "action": action.code,
            "campaign": campaign.code if campaign else None,
            "ref": ref,
            "points": points,
            "posting_id": posting_id,
            **({"coupon": coupon} if coupon else {}),
            **({"coupon_refused": refused} if refused else {}),
        },
        member_id,
    )
    grant = Grant(points, posting_id, replayed=False, coupon=coupon, coupon_refused=refused)
    if campaign is None:
        session.flush()
        events.emit_many(session, [rewarded], ctx.now)
        return grant
    if cap is not None:
        session.execute(
            update(RuleBudgetUsage)
            .where(RuleBudgetUsage.rule_id == domain.window_id(campaign.id))
            .values(points_used=RuleBudgetUsage.points_used + points, updated_at=ctx.now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    # the reward's event goes with the participation's in one INSERT
    campaigns.participate(
        session, campaign, member_id, source="action", now=ctx.now, also=[rewarded]
    )
    if cap is not None and budget_left is not None and budget_left - points <= 0:
        campaigns.alert_if_reached(session, ctx.actor, campaign, now=ctx.now)
    return grant


def _give(
    session: Session, ctx: Ctx, action: CampaignAction, member_id: int, ref: str, points: int
) -> int:
    """The reward's ledger writes (audited and announced by the ledger's flows)."""
    earned = flows.earn(
        session,
        ctx,
        member_id,
        points=points,
        source_type=SOURCE_TYPE,
        source_id=f"{action.id}:{member_id}:{ref}",
        reason=f"{action.kind}: {action.name}",
        pending_days=0,
    )
    return earned.posting.posting_id


def _coupon_key(action: CampaignAction, ref: str) -> str:
    # the template and the member complete the coupons' natural key
    return f"action:{action.id}:{ref}"


def _give_coupon(
    session: Session, ctx: Ctx, action: CampaignAction, member_id: int, ref: str
) -> tuple[str | None, str | None]:
    """The action's coupon, if it has one: (code, None) or (None, why it was refused)."""
    if action.coupon_template is None:
        return None, None
    try:
        # a missing or paused template is refused before anything is written
        report = coupons.issue_many(
            session,
            ctx,
            action.coupon_template,
            [member_id],
            reason="action",
            key=_coupon_key(action, ref),
        )
    except PatronError as exc:
        return None, exc.code
    if report.issued:
        return report.issued[0].code, None
    return None, report.refused.get(member_id)


def _coupon_given(session: Session, action: CampaignAction, member_id: int, ref: str) -> str | None:
    if action.coupon_template is None:
        return None
    return session.scalar(
        select(Coupon.code)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(
            CouponTemplate.code == action.coupon_template,
            Coupon.member_id == member_id,
            Coupon.issue_key == _coupon_key(action, ref),
        )
    )


def overview(session: Session) -> list[tuple[CampaignAction, str | None, int, int]]:
    """Every action with its campaign's name, the rewards given and their points (one read)."""
    given = (
        select(
            CampaignActionGrant.action_id.label("action_id"),
            func.count(CampaignActionGrant.id).label("n"),
            func.coalesce(func.sum(CampaignActionGrant.points), 0).label("points"),
        )
        .group_by(CampaignActionGrant.action_id)
        .subquery()
    )
    rows = session.execute(
        select(CampaignAction, Campaign.name, given.c.n, given.c.points)
        .outerjoin(Campaign, Campaign.id == CampaignAction.campaign_id)
        .outerjoin(given, given.c.action_id == CampaignAction.id)
        .order_by(CampaignAction.id)
    ).all()
    return [(a, name, int(n or 0), int(p or 0)) for a, name, n, p in rows]
