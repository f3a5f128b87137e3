"""Campaign use cases: create, change, schedule (compile into the earning rules), preview,
budget alerts and results. Services flush, never commit.

A campaign with a multiplier becomes a window of the earning rules: ``compile_windows`` writes
every active campaign's window into the program section ``campaign_windows``, which the order
path reads with the operator's own rules in its one settings preload (``orders.service.
rules_in_force``). The window's budget row (``rule_budget_usage``, id ``campaign-<id>``) is
charged by orders under the member's lock and by the campaign's actions, so one counter holds
the campaign's points, and the budget cap holds on every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.campaigns import domain, experiment
from patron.campaigns.domain import SECTION, Audience, CampaignSettings
from patron.campaigns.models import Campaign, CampaignParticipation
from patron.campaigns.schemas import CampaignIn
from patron.coupons import bulk
from patron.errors import Conflict, Invalid, NotFound
from patron.kit.buckets import bucket_sql
from patron.ledger.service import Ctx
from patron.members.models import Member, MemberTag, Tag
from patron.orders.models import RuleBudgetUsage
from patron.orders.service import CAMPAIGN_WINDOWS_SECTION
from patron.program import service as program
from patron.rules.definitions import CampaignWindows, Holdout
from patron.segments import service as segments
from patron.segments.compile import compile_rule
from patron.segments.models import Segment
from patron.tiers import service as tiers
from patron.tiers.models import MemberTier
from patron.webhooks import events

#: status → the statuses an operator may move it to
#: codes a campaign cannot take: they name the API's own paths under /api/v1/campaigns/
RESERVED_CODES: Final = frozenset({"settings", "preview", "actions", "milestones"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"active", "ended"}),
    "active": frozenset({"paused", "ended"}),
    "paused": frozenset({"active", "ended"}),
    "ended": frozenset(),
}


def get_settings(session: Session) -> CampaignSettings:
    return program.get_section(session, SECTION, CampaignSettings)


def put_settings(
    session: Session, actor: Principal, value: CampaignSettings, *, now: datetime
) -> None:
    """Save the campaign settings (audited by the settings' service) and recompile the
    earning windows: the point cost sets the points cap of a budget given in money."""
    program.put_section(session, actor, SECTION, value, now=now)
    compile_windows(session, actor, now=now)


def get(session: Session, code: str) -> Campaign:
    row = session.scalar(select(Campaign).where(Campaign.code == code))
    if row is None:
        raise NotFound("campaign_not_found", f"No campaign has the code {code!r}.")
    return row


def listing(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc())))


def schedule_of(c: Campaign) -> Any:
    return domain.parse_schedule(c.schedule)


def audience_of(c: Campaign) -> Audience:
    return Audience.model_validate(c.audience)


def points_cap(c: Campaign, settings: CampaignSettings) -> int | None:
    return domain.points_cap(
        budget_points=c.budget_points,
        budget_fen=c.budget_fen,
        cap_bp=c.budget_cap_bp,
        fen_per_100=settings.point_cost_fen_per_100,
    )


def points_used(session: Session, campaign_id: int) -> int:
    used = session.scalar(
        select(RuleBudgetUsage.points_used).where(
            RuleBudgetUsage.rule_id == domain.window_id(campaign_id)
        )
    )
    return int(used or 0)


def _snapshot(c: Campaign) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "status": c.status,
        "schedule": c.schedule,
        "audience": c.audience,
        "multiplier_bp": c.multiplier_bp,
        "budget_points": c.budget_points,
        "budget_fen": c.budget_fen,
        "budget_cap_bp": c.budget_cap_bp,
        "control_bp": c.control_bp,
    }


def _payload(c: Campaign) -> dict[str, Any]:
    return {"campaign": c.code, "status": c.status}


def create(session: Session, actor: Principal, data: CampaignIn, *, now: datetime) -> Campaign:
    if data.code in RESERVED_CODES:
        raise Invalid(
            "campaign_code_reserved",
            f"{data.code!r} names a page of the campaigns' API; choose another code.",
            details={"field": "code"},
        )
    if session.scalar(select(exists().where(Campaign.code == data.code))):
        raise Conflict("campaign_code_taken", f"A campaign with the code {data.code!r} exists.")
    if data.audience.segment is not None:
        segment_of(session, data.audience.segment)
    settings = get_settings(session)
    c = Campaign(
        code=data.code,
        name=data.name,
        status="draft",
        schedule=data.schedule.model_dump(mode="json"),
        audience=data.audience.model_dump(mode="json"),
        multiplier_bp=data.multiplier_bp,
        budget_points=data.budget_points,
        budget_fen=data.budget_fen,
        budget_cap_bp=settings.budget_cap_bp,
        other_cost_fen=0,
        control_bp=settings.default_control_bp if data.control_bp is None else data.control_bp,
        experiment_key=f"campaign:{data.code}",
        created_at=now,
        updated_at=now,
    )
    session.add(c)
    session.flush()
    audit.record(session, actor, "campaign.create", "campaign", c.code, None, _snapshot(c), at=now)
    events.emit(session, "campaign.created", _payload(c), now)
    return c


def update(
    session: Session, actor: Principal, code: str, data: CampaignIn, *, now: datetime
) -> Campaign:
    """Change a campaign that has not ended. Its code (and so its control group) stays."""
    c = get(session, code)
    if c.status == "ended":
        raise Conflict("campaign_ended", "An ended campaign cannot be changed.")
    if data.code != c.code:
        raise Invalid("campaign_code_fixed", "A campaign's code cannot change.")
    if data.audience.segment is not None:
        segment_of(session, data.audience.segment)
    before = _snapshot(c)
    c.name = data.name
    c.schedule = data.schedule.model_dump(mode="json")
    c.audience = data.audience.model_dump(mode="json")
    c.multiplier_bp = data.multiplier_bp
    c.budget_points = data.budget_points
    c.budget_fen = data.budget_fen
    if data.control_bp is not None:
        c.control_bp = data.control_bp
    c.updated_at = now
    session.flush()
    audit.record(
        session, actor, "campaign.update", "campaign", c.code, before, _snapshot(c), at=now
    )
    events.emit(session, "campaign.updated", _payload(c), now)
    if c.status == "active":
        compile_windows(session, actor, now=now)
    return c


def set_status(
    session: Session, actor: Principal, code: str, status: str, *, now: datetime
) -> Campaign:
    c = get(session, code)
    if status not in TRANSITIONS.get(c.status, frozenset()):
        raise Conflict(
            "campaign_status_invalid",
            f"A {c.status} campaign cannot become {status}.",
            details={"status": c.status},
        )
    before = c.status
    c.status = status
    c.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.status",
        "campaign",
        c.code,
        {"status": before},
        {"status": status},
        at=now,
    )
    events.emit(session, "campaign.status_changed", _payload(c) | {"from": before}, now)
    compile_windows(session, actor, now=now)
    return c


def compile_windows(session: Session, actor: Principal, *, now: datetime) -> CampaignWindows:
    """Write the earning windows of every active campaign with a multiplier (the order path
    reads them with the operator's rules). A paused or ended campaign's window disappears."""
    settings = get_settings(session)
    windows = []
    for c in session.scalars(
        select(Campaign)
        .where(Campaign.status == "active", Campaign.multiplier_bp.is_not(None))
        .order_by(Campaign.id)
    ):
        assert c.multiplier_bp is not None
        windows.append(
            domain.to_window(
                schedule_of(c),
                campaign_id=c.id,
                name=c.name,
                multiplier_bp=c.multiplier_bp,
                audience=audience_of(c),
                budget_points=points_cap(c, settings),
                holdout=Holdout(experiment=c.experiment_key, control_bp=c.control_bp)
                if c.control_bp
                else None,
            )
        )
    # every active campaign's budget row exists before its first charge: the order path and the
    # actions lock it (creating it on first use would race between two first charges)
    for c in session.scalars(select(Campaign).where(Campaign.status == "active")):
        _insert_ignore(
            session,
            RuleBudgetUsage,
            {"rule_id": domain.window_id(c.id), "points_used": 0, "updated_at": now},
        )
    value = CampaignWindows(windows=tuple(windows))
    program.put_section(session, actor, CAMPAIGN_WINDOWS_SECTION, value, now=now)
    return value


# ---------------------------------------------------------------- audience


def _start_of(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def audience_filter(
    session: Session, audience: Audience, tz: ZoneInfo, *, now: datetime | None = None
) -> Any:
    """``SELECT member id, tier code`` of the active members an audience targets (the one
    place an audience becomes SQL). A segment's rule is compiled as of ``now`` (default: the
    wall clock), so lifecycle and recency conditions read the day it runs."""
    base = tiers.get_ladder(session).base.code
    tier = func.coalesce(MemberTier.tier_code, base)
    q = (
        select(Member.id.label("member_id"), tier.label("tier"))
        .outerjoin(MemberTier, MemberTier.member_id == Member.id)
        .where(Member.status == "active")
    )
    if audience.tiers:
        q = q.where(tier.in_(audience.tiers))
    if audience.tags:
        q = q.where(
            exists()
            .where(MemberTag.member_id == Member.id, MemberTag.tag_id == Tag.id)
            .where(Tag.name.in_(audience.tags))
        )
    if audience.joined_from is not None:
        q = q.where(Member.created_at >= _start_of(audience.joined_from, tz))
    if audience.joined_until is not None:
        q = q.where(Member.created_at < _start_of(audience.joined_until + timedelta(days=1), tz))
    if audience.segment is not None:
        seg = segment_of(session, audience.segment)
        rule = segments.parse(seg.rule)
        ids = compile_rule(
            rule,
            now=now or datetime.now(tz),
            tz=tz,
            lifecycle=segments.lifecycle_settings(session),
        )
        q = q.where(Member.id.in_(ids))
    return q


def segment_of(session: Session, code: str) -> Segment:
    seg = session.scalar(select(Segment).where(Segment.code == code))
    if seg is None:
        raise Invalid(
            "unknown_segment",
            f"No saved segment has the code {code!r}; save it first or choose another.",
            details={"field": "audience.segment"},
        )
    return seg


def treated(session: Session, c: Campaign, tz: ZoneInfo, *, now: datetime) -> Any:
    """``SELECT member id`` of the campaign's audience outside its control group (the bucket
    test of ``experiment.group_of``, in SQL)."""
    q = audience_filter(session, audience_of(c), tz, now=now)
    if c.control_bp:
        dialect = session.get_bind().dialect.name
        q = q.where(bucket_sql(c.experiment_key, Member.id, dialect) >= c.control_bp)
    return q.with_only_columns(Member.id)


def reach(
    session: Session, audience: Audience, tz: ZoneInfo, *, now: datetime | None = None
) -> int:
    sub = audience_filter(session, audience, tz, now=now).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def in_audience(
    session: Session,
    audience: Audience,
    tz: ZoneInfo,
    member_id: int,
    *,
    now: datetime | None = None,
) -> bool:
    q = audience_filter(session, audience, tz, now=now).where(Member.id == member_id)
    return session.execute(q).first() is not None


@dataclass(frozen=True, slots=True)
class Preview:
    reach: int
    control: int
    points_cap: int | None
    max_cost_fen: int | None
    next_days: list[date]


def preview(
    session: Session, data: CampaignIn, *, today: date, tz: ZoneInfo, now: datetime | None = None
) -> Preview:
    """ "This campaign reaches N members and costs at most ¥X": the reach of its audience, the
    control group held out of it (expected), and the cost of its points cap."""
    settings = get_settings(session)
    n = reach(session, data.audience, tz, now=now)
    control_bp = settings.default_control_bp if data.control_bp is None else data.control_bp
    cap = domain.points_cap(
        budget_points=data.budget_points,
        budget_fen=data.budget_fen,
        cap_bp=settings.budget_cap_bp,
        fen_per_100=settings.point_cost_fen_per_100,
    )
    cost = None if cap is None else domain.points_cost_fen(cap, settings.point_cost_fen_per_100)
    return Preview(
        reach=n,
        control=n * control_bp // 10_000,
        points_cap=cap,
        max_cost_fen=cost,
        next_days=domain.next_days(data.schedule, today),
    )


# ---------------------------------------------------------------- participation & budget


def _insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> bool:
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
    result = session.execute(ins.values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


def participate(
    session: Session,
    c: Campaign,
    member_id: int,
    *,
    source: str,
    now: datetime,
    also: list[events.NewEvent] | None = None,
) -> bool:
    """Record that the member took part (once per campaign); True when this is the first time.
    ``also``: events of the caller written with the ``campaign.joined`` one, in one INSERT."""
    group = experiment.group_of(c.experiment_key, member_id, c.control_bp)
    new = _insert_ignore(
        session,
        CampaignParticipation,
        {
            "campaign_id": c.id,
            "member_id": member_id,
            "group": group,
            "source": source,
            "joined_at": now,
        },
    )
    joined = [
        events.NewEvent(
            "campaign.joined",
            {"campaign": c.code, "group": group, "source": source},
            member_id,
        )
    ]
    events.emit_many(session, [*(joined if new else []), *(also or [])], now)
    return new


def alert_if_reached(session: Session, actor: Principal, c: Campaign, *, now: datetime) -> bool:
    """Emit ``campaign.budget_reached`` once, when the points used reach the cap."""
    if c.budget_alerted_at is not None:
        return False
    cap = points_cap(c, get_settings(session))
    used = points_used(session, c.id)
    if not domain.budget_reached(used, cap):
        return False
    c.budget_alerted_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.budget_reached",
        "campaign",
        c.code,
        None,
        {"points_used": used, "points_cap": cap},
        at=now,
    )
    events.emit(
        session,
        "campaign.budget_reached",
        _payload(c) | {"points_used": used, "points_cap": cap},
        now,
    )
    return True


def run_budget_alerts(session: Session, actor: Principal, *, now: datetime) -> int:
    """The job behind orders: their multiplier points charge the budget row without looking
    at alerts, so this sweeps the active campaigns that have not alerted yet."""
    n = 0
    for c in session.scalars(
        select(Campaign)
        .where(Campaign.status == "active", Campaign.budget_alerted_at.is_(None))
        .order_by(Campaign.id)
    ):
        n += alert_if_reached(session, actor, c, now=now)
    return n


def for_member(
    session: Session, member_id: int, *, today: date, tz: ZoneInfo
) -> list[tuple[Campaign, list[date]]]:
    """Active campaigns the member is in (audience, not the control group) and their next days."""
    out: list[tuple[Campaign, list[date]]] = []
    for c in session.scalars(
        select(Campaign).where(Campaign.status == "active").order_by(Campaign.id)
    ):
        if experiment.group_of(c.experiment_key, member_id, c.control_bp) == "control":
            continue
        if not in_audience(session, audience_of(c), tz, member_id):
            continue
        days = domain.next_days(schedule_of(c), today, count=3)
        if days:
            out.append((c, days))
    return out


# ---------------------------------------------------------------- coupons


def issue_coupons(
    session: Session, ctx: Ctx, code: str, template_code: str, ref: str = ""
) -> bulk.BulkReport:
    """Issue a coupon of the template to the campaign's audience (its control group held
    out), set-based; once per member by the key ``campaign:CODE[:REF]`` — a recurring campaign
    passes a ref (the member day) to issue again."""
    c = get(session, code)
    if c.status != "active":
        raise Conflict(
            "campaign_not_active",
            f"Campaign {c.code} is {c.status}: start it before issuing its coupons.",
            details={"status": c.status},
        )
    key = f"campaign:{c.code}" + (f":{ref}" if ref else "")
    return bulk.issue_to_audience(
        session,
        ctx,
        template_code,
        treated(session, c, ctx.tz, now=ctx.now),
        reason="campaign",
        key=key,
        note=f"campaign {c.code}",
    )
