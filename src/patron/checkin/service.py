"""Check in for today: one per member and business day, points through the ledger flows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.checkin import domain
from patron.checkin.domain import SECTION, CheckinSettings, Reward
from patron.checkin.models import CheckIn
from patron.errors import Conflict
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


def _last(session: Session, member_id: int) -> CheckIn | None:
    return session.scalar(
        select(CheckIn)
        .where(CheckIn.member_id == member_id)
        .order_by(CheckIn.business_date.desc())
        .limit(1)
    )


def status(session: Session, ctx: Ctx, member_id: int) -> Status:
    settings = get_settings(session)
    today = business_date(ctx.now, ctx.tz)
    last = _last(session, member_id)
    streak = domain.current_streak(
        last.business_date if last else None, last.streak if last else 0, today
    )
    done = last is not None and last.business_date == today
    return Status(today, done, streak, settings, domain.next_bonus(streak, settings))


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
    reward = domain.reward(streak, settings)
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
    return reward


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
