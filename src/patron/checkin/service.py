"""Check in for today: one per member and business day, points through the ledger flows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.checkin import domain
from patron.checkin.domain import SECTION, CheckinSettings, Reward
from patron.checkin.models import CheckIn
from patron.coupons import service as coupons
from patron.errors import Conflict, NotFound
from patron.kit.timeutil import business_date
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.program import service as program

SOURCE_TYPE = "checkin"


def get_settings(session: Session) -> CheckinSettings:
    return program.get_section(session, SECTION, CheckinSettings)


@dataclass(frozen=True, slots=True)
class Status:
    today: date
    checked_in_today: bool
    streak: int
    settings: CheckinSettings
    next_bonus: tuple[int, int] | None
    #: days checked in this business month
    month_days: int = 0
    #: (days still to go, reward) of the month plan's next step
    next_plan_step: tuple[int, domain.PlanReward] | None = None


def _last(session: Session, member_id: int) -> CheckIn | None:
    return session.scalar(
        select(CheckIn)
        .where(CheckIn.member_id == member_id)
        .order_by(CheckIn.business_date.desc())
        .limit(1)
    )


def _month_days(session: Session, member_id: int, today: date) -> int:
    """Days checked in within ``today``'s month, before today."""
    return (
        session.scalar(
            select(func.count())
            .select_from(CheckIn)
            .where(
                CheckIn.member_id == member_id,
                CheckIn.business_date >= today.replace(day=1),
                CheckIn.business_date < today,
            )
        )
        or 0
    )


def status(session: Session, ctx: Ctx, member_id: int) -> Status:
    settings = get_settings(session)
    today = business_date(ctx.now, ctx.tz)
    last = _last(session, member_id)
    streak = domain.current_streak(
        last.business_date if last else None, last.streak if last else 0, today
    )
    done = last is not None and last.business_date == today
    month_days = _month_days(session, member_id, today) + done if settings.month_plan else 0
    return Status(
        today,
        done,
        streak,
        settings,
        domain.next_bonus(streak, settings),
        month_days,
        domain.next_plan_step(month_days, settings),
    )


def check_in(session: Session, ctx: Ctx, member_id: int) -> Reward:
    """Today's check-in, or ``Conflict('already_checked_in')``."""
    settings = get_settings(session)
    if not settings.enabled:
        raise Conflict("checkin_disabled", "Daily check-in is switched off.")
    today = business_date(ctx.now, ctx.tz)
    # The member's ledger lock serialises two taps from two phones at once.
    ledger.begin(session, ctx, member_id)
    last = _last(session, member_id)
    if last is not None and last.business_date >= today:
        raise Conflict("already_checked_in", "You have already checked in today.")
    streak = domain.next_streak(
        last.business_date if last else None, last.streak if last else 0, today, settings.cycle_days
    )
    month_days = _month_days(session, member_id, today) + 1 if settings.month_plan else 0
    reward = domain.reward(streak, settings, month_days)
    posting_id = None
    if reward.total > 0:
        reason = f"daily check-in, day {streak}" + (" with streak bonus" if reward.bonus else "")
        earned = flows.earn(
            session,
            ctx,
            member_id,
            points=reward.total,
            source_type=SOURCE_TYPE,
            source_id=f"{member_id}:{today.isoformat()}",
            reason=reason,
            pending_days=0,
        )
        posting_id = earned.posting.posting_id
    session.add(
        CheckIn(
            member_id=member_id,
            business_date=today,
            streak=streak,
            points=reward.points,
            bonus=reward.bonus,
            posting_id=posting_id,
            created_at=ctx.now,
        )
    )
    session.flush()
    if reward.coupons:
        reward = replace(reward, issued=_give_coupons(session, ctx, member_id, today, reward))
    return reward


def _give_coupons(
    session: Session, ctx: Ctx, member_id: int, today: date, reward: Reward
) -> tuple[str, ...]:
    """The coupons today's check-in earns, idempotent by (template, member, day and step). A
    template that is missing, paused, sold out or not for the member's tier gives nothing and
    does not stop the check-in (checked before anything is written)."""
    issued: list[str] = []
    for part, template in reward.coupons:
        try:
            report = coupons.issue_many(
                session,
                ctx,
                template,
                [member_id],
                reason="checkin",
                key=f"checkin:{domain.coupon_ref(today, part)}",
            )
        except (NotFound, Conflict):
            continue
        issued.extend(c.code for c in report.issued)
    return tuple(issued)


def month(session: Session, member_id: int, year: int, month_no: int) -> list[CheckIn]:
    first = date(year, month_no, 1)
    after = date(year + (month_no == 12), month_no % 12 + 1, 1)
    return list(
        session.scalars(
            select(CheckIn)
            .where(
                CheckIn.member_id == member_id,
                CheckIn.business_date >= first,
                CheckIn.business_date < after,
            )
            .order_by(CheckIn.business_date)
        )
    )


def history(session: Session, member_id: int) -> list[CheckIn]:
    return list(
        session.scalars(
            select(CheckIn).where(CheckIn.member_id == member_id).order_by(CheckIn.business_date)
        )
    )
