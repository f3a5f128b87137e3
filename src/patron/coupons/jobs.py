"""Scheduled coupon work, idempotent and committed per batch: expiry of unused coupons, the
automatic packs (welcome, first order, birthday in the business timezone) and reminders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import extract, func, select, update
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.coupons import domain, redemption, service
from patron.coupons.domain import Reason
from patron.coupons.models import Coupon
from patron.db import Database
from patron.errors import PatronError
from patron.kit.timeutil import business_date
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders.models import Order
from patron.webhooks import events

BATCH = 10_000


def run_expire(db: Database, now: datetime) -> int:
    """Expire every unused coupon past its validity, one batch per transaction."""
    total = 0
    while True:
        with db.unit_of_work() as session:
            n = redemption.expire_due(session, now, BATCH)
        total += n
        if n < BATCH:
            return total


@dataclass
class AutoReport:
    welcome: int = 0
    first_order: int = 0
    birthday: int = 0


def _birthday_members(session: Session, day: date) -> list[int]:
    days = [day]
    if day.month == 2 and day.day == 28 and not _leap(day.year):
        days.append(date(2000, 2, 29))  # 29 February birthdays are kept on the 28th
    out: list[int] = []
    for d in days:
        out.extend(
            session.scalars(
                select(Member.id).where(
                    Member.status == "active",
                    extract("month", Member.birthday) == d.month,
                    extract("day", Member.birthday) == d.day,
                )
            )
        )
    return out


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def issue_auto(session: Session, now: datetime, tz: ZoneInfo) -> AutoReport:
    """Give the packs the settings name: welcome to members who joined within the window,
    first order to members whose first order falls within it, birthday to members whose
    birthday is today (business timezone). Keys make a rerun issue nothing more; a paused or
    missing template is skipped."""
    settings = service.get_settings(session)
    ctx = Ctx(Principal.system("coupons"), now, tz)
    since = now - timedelta(days=settings.auto_window_days)
    report = AutoReport()
    welcome = (
        list(
            session.scalars(
                select(Member.id).where(Member.status == "active", Member.created_at >= since)
            )
        )
        if settings.welcome_templates
        else []
    )
    first = (
        list(
            session.scalars(
                select(Order.member_id)
                .where(Order.first_purchase.is_(True), Order.ordered_at >= since)
                .distinct()
            )
        )
        if settings.first_order_templates
        else []
    )
    born = _birthday_members(session, business_date(now, tz)) if settings.birthday_templates else []
    groups: tuple[tuple[Reason, list[str], list[int]], ...] = (
        ("welcome", settings.welcome_templates, welcome),
        ("first_order", settings.first_order_templates, first),
        ("birthday", settings.birthday_templates, born),
    )
    for reason, templates, members in groups:
        if not members:
            continue
        key = domain.issue_key(reason, "", at=now, tz=tz)
        for code in templates:
            try:
                got = service.issue_many(session, ctx, code, members, reason=reason, key=key)
            except PatronError:
                continue  # paused or removed: the operator sees it on the template page
            setattr(report, reason, getattr(report, reason) + len(got.issued))
    return report


def run_auto(db: Database, now: datetime, tz: ZoneInfo) -> AutoReport:
    with db.unit_of_work() as session:
        return issue_auto(session, now, tz)


def record_reminders(session: Session, now: datetime, tz: ZoneInfo) -> int:
    """An event per unused coupon expiring within ``reminder_days`` (so a messaging system
    can remind its member), once per coupon."""
    days = service.get_settings(session).reminder_days
    end = datetime.combine(business_date(now, tz) + timedelta(days=days + 1), time(), tz)
    rows = session.execute(
        update(Coupon)
        .where(
            Coupon.status == "issued",
            Coupon.reminded_at.is_(None),
            Coupon.valid_until > now,
            Coupon.valid_until <= end.astimezone(UTC),
        )
        .values(reminded_at=now)
        .returning(Coupon.code, Coupon.member_id, Coupon.valid_until)
        .execution_options(synchronize_session=False)
    ).all()
    events.emit_many(
        session,
        [
            events.NewEvent(
                "coupon.expiring",
                {"code": code, "valid_until": until.isoformat()},
                member_id=mid,
            )
            for code, mid, until in rows
        ],
        now,
    )
    return len(rows)


def count_expiring(session: Session, member_id: int, now: datetime, days: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Coupon.member_id == member_id,
                Coupon.status == "issued",
                Coupon.valid_until > now,
                Coupon.valid_until <= now + timedelta(days=days),
            )
        )
        or 0
    )
