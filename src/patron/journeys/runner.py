"""The journey run: enter the members each trigger selects, then move every due entry through
its steps, set-based per (journey version, step). Idempotent: an occasion enters a member once
(unique entry key), a step is recorded once per entry (unique path row), a message is queued
once per entry and step (its dedupe key), a coupon once per issue key and points once per
ledger source — so rerunning a day does nothing twice."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    String,
    and_,
    cast,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.context import build
from patron.coupons import service as coupons
from patron.coupons.domain import Reason
from patron.db import Database, UTCDateTime
from patron.errors import PatronError
from patron.journeys import domain
from patron.journeys.models import Journey, JourneyEntry, JourneyPathStep, JourneyVersion
from patron.kit.timeutil import business_date
from patron.ledger import batch
from patron.ledger.domain import BatchCredit
from patron.ledger.models import PointsLot
from patron.members import domain as member_domain
from patron.members.models import Member, MemberTag, Tag
from patron.messaging import service as messaging
from patron.orders.models import Order
from patron.segments import service as segments
from patron.segments.compile import compile_rule, lifecycle_stage
from patron.tiers.models import TierChange

CHUNK = 2000
SYSTEM = Principal.system("journeys")
COUPON_REASON: dict[str, Reason] = {
    "registration": "welcome",
    "first_order": "first_order",
    "birthday": "birthday",
}


@dataclass
class RunReport:
    entered: int = 0
    steps: int = 0
    messages: int = 0
    coupons: int = 0
    points: int = 0
    tagged: int = 0
    finished: int = 0
    per_journey: dict[str, int] = field(default_factory=dict)


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# ---- triggers ------------------------------------------------------------------------------


def candidates(
    session: Session, trigger: str, params: dict[str, int], now: datetime, tz: ZoneInfo
) -> Any:
    """A select of (member_id, entry_key) the trigger selects now."""
    active = Member.status == "active"
    if trigger == "registration":
        since = now - timedelta(hours=params["within_hours"])
        return select(
            Member.id.label("member_id"), literal("registration").label("entry_key")
        ).where(active, Member.created_at >= since, Member.created_at <= now)
    if trigger == "first_order":
        since = now - timedelta(hours=params["within_hours"])
        return (
            select(Order.member_id.label("member_id"), literal("first_order").label("entry_key"))
            .join(Member, Member.id == Order.member_id)
            .where(active, Order.first_purchase.is_(True), Order.ordered_at >= since)
            .distinct()
        )
    if trigger == "birthday":
        day = business_date(now, tz)
        days = [(day.month, day.day)]
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            days.append((2, 29))  # 29 February birthdays are kept on the 28th
        on = or_(
            *(
                and_(extract("month", Member.birthday) == m, extract("day", Member.birthday) == d)
                for m, d in days
            )
        )
        return select(
            Member.id.label("member_id"), literal(f"birthday:{day.year}").label("entry_key")
        ).where(active, on)
    if trigger == "points_expiring":
        until = now + timedelta(days=params["days_before"])
        return (
            select(
                PointsLot.member_id.label("member_id"),
                (literal("expiry:") + cast(func.min(PointsLot.id), String)).label("entry_key"),
            )
            .join(Member, Member.id == PointsLot.member_id)
            .where(
                active,
                PointsLot.remaining > 0,
                PointsLot.expires_at > now,
                PointsLot.expires_at <= until,
            )
            .group_by(PointsLot.member_id)
        )
    if trigger == "dormant":
        last_order = (
            select(func.coalesce(func.max(Order.id), 0))
            .where(Order.member_id == Member.id)
            .scalar_subquery()
        )
        stage = lifecycle_stage(now, segments.lifecycle_settings(session))
        return select(
            Member.id.label("member_id"),
            (literal("dormant:") + cast(last_order, String)).label("entry_key"),
        ).where(active, stage == "dormant")
    if trigger == "tier_upgrade":
        since = now - timedelta(hours=params["within_hours"])
        return (
            select(
                TierChange.member_id.label("member_id"),
                (literal("tier:") + cast(TierChange.id, String)).label("entry_key"),
            )
            .join(Member, Member.id == TierChange.member_id)
            .where(active, TierChange.kind == "upgrade", TierChange.at >= since)
        )
    if trigger == "after_service":
        hours = params["hours_after"]
        # Orders that reached "hours_after" within the last day (a run at least daily sees each).
        upper = now - timedelta(hours=hours)
        lower = upper - timedelta(hours=24)
        return (
            select(
                Order.member_id.label("member_id"),
                (literal("order:") + cast(Order.id, String)).label("entry_key"),
            )
            .join(Member, Member.id == Order.member_id)
            .where(active, Order.ordered_at > lower, Order.ordered_at <= upper)
        )
    raise ValueError(trigger)  # pragma: no cover - the trigger was validated at save


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def enter(session: Session, journey: Journey, now: datetime, tz: ZoneInfo) -> int:
    """Insert an entry for each (member, occasion) the trigger selects and that is not in yet."""
    cand = candidates(session, journey.trigger, journey.params, now, tz).subquery()
    source = select(
        literal(journey.id),
        literal(journey.version),
        cand.c.member_id,
        cand.c.entry_key,
        literal("active"),
        literal(0),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(literal_column("1") == 1)  # SQLite needs a WHERE before ON CONFLICT
    stmt = (
        _insert(session)(JourneyEntry)
        .from_select(
            [
                "journey_id",
                "version",
                "member_id",
                "entry_key",
                "status",
                "step",
                "next_run_at",
                "entered_at",
            ],
            source,
        )
        .on_conflict_do_nothing(index_elements=["journey_id", "member_id", "entry_key"])
    )
    return len(session.execute(stmt.returning(JourneyEntry.id)).all())


# ---- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    member_id: int
    entry_key: str


def advance(
    session: Session, now: datetime, tz: ZoneInfo, report: RunReport, *, paused: set[int]
) -> bool:
    """Move one chunk of due entries by one step each; False when none was due."""
    q = (
        select(
            JourneyEntry.id,
            JourneyEntry.journey_id,
            JourneyEntry.version,
            JourneyEntry.step,
            JourneyEntry.member_id,
            JourneyEntry.entry_key,
        )
        .where(JourneyEntry.status == "active", JourneyEntry.next_run_at <= now)
        .order_by(JourneyEntry.id)
        .limit(CHUNK)
    )
    if paused:
        q = q.where(JourneyEntry.journey_id.not_in(sorted(paused)))
    rows = session.execute(q).all()
    if not rows:
        return False
    groups: dict[tuple[int, int, int], list[Due]] = defaultdict(list)
    for eid, jid, ver, at, mid, key in rows:
        groups[(jid, ver, at)].append(Due(eid, mid, key))
    versions = _versions(session, {(jid, ver) for jid, ver, _ in groups})
    journeys = {
        j.id: j
        for j in session.scalars(
            select(Journey).where(Journey.id.in_(sorted({g[0] for g in groups})))
        )
    }
    path: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for (jid, ver, index), entries in groups.items():
        steps = domain.parse_steps(versions[(jid, ver)])
        journey = journeys[jid]
        if index >= len(steps):
            moves.extend(_move(e, None, now, now, done=True) for e in entries)
            continue
        step = steps[index]
        outcomes = _run_step(session, journey, step, index, entries, now, tz, report)
        for e in entries:
            outcome, ref, matched = outcomes[e.id]
            path.append(
                {
                    "entry_id": e.id,
                    "step": index,
                    "kind": step.kind,
                    "outcome": outcome,
                    "ref": ref,
                    "at": now,
                }
            )
            nxt = domain.next_index(steps, index, matched)
            wait = timedelta(hours=step.hours) if step.kind == "wait" else timedelta()
            done = nxt is None or nxt >= len(steps)
            moves.append(_move(e, nxt, now + wait, now, done=done, exited=nxt is None))
        report.steps += len(entries)
        report.per_journey[journey.code] = report.per_journey.get(journey.code, 0) + len(entries)
    if path:
        stmt = _insert(session)(JourneyPathStep.__table__).on_conflict_do_nothing(
            index_elements=["entry_id", "step"]
        )
        session.connection().execute(stmt, path)
    session.execute(update(JourneyEntry), moves)
    report.finished += sum(1 for m in moves if m["status"] != "active")
    return True


def _move(
    e: Due,
    nxt: int | None,
    run_at: datetime,
    now: datetime,
    *,
    done: bool,
    exited: bool = False,
) -> dict[str, Any]:
    if done:
        return {
            "id": e.id,
            "status": "exited" if exited else "done",
            "step": -1 if nxt is None else nxt,
            "next_run_at": now,
            "finished_at": now,
        }
    return {"id": e.id, "status": "active", "step": nxt, "next_run_at": run_at, "finished_at": None}


def _versions(
    session: Session, keys: set[tuple[int, int]]
) -> dict[tuple[int, int], list[dict[str, Any]]]:
    rows = session.execute(
        select(JourneyVersion.journey_id, JourneyVersion.version, JourneyVersion.steps).where(
            JourneyVersion.journey_id.in_(sorted({k[0] for k in keys}))
        )
    ).all()
    return {(j, v): s for j, v, s in rows if (j, v) in keys}


Outcome = tuple[str, str | None, bool]


def _run_step(
    session: Session,
    journey: Journey,
    step: domain.Step,
    index: int,
    entries: list[Due],
    now: datetime,
    tz: ZoneInfo,
    report: RunReport,
) -> dict[int, Outcome]:
    if step.kind == "wait":
        return {e.id: ("waited", None, True) for e in entries}
    if step.kind == "condition":
        seg = segments.get(session, step.segment)
        rule = segments.parse(seg.rule)
        ids = [e.member_id for e in entries]
        matched: set[int] = set()
        sel = compile_rule(rule, now=now, tz=tz, lifecycle=segments.lifecycle_settings(session))
        for start in range(0, len(ids), 1000):
            matched.update(session.scalars(sel.where(Member.id.in_(ids[start : start + 1000]))))
        return {
            e.id: (
                ("matched", None, True) if e.member_id in matched else ("not_matched", None, False)
            )
            for e in entries
        }
    if step.kind == "send":
        extra = _extra_values(session, journey, [e.member_id for e in entries], now)
        drafts = [
            messaging.Draft(
                e.member_id, f"journey:{journey.code}:{e.id}:{index}", extra.get(e.member_id, {})
            )
            for e in entries
        ]
        report.messages += messaging.enqueue(
            session,
            step.template,
            drafts,
            source_kind="journey",
            source_code=journey.code,
            now=now,
        )
        return {e.id: ("queued", None, True) for e in entries}
    if step.kind == "coupon":
        ctx = build(session, SYSTEM, now, tz)
        reason = COUPON_REASON.get(journey.trigger, "manual")
        out: dict[int, Outcome] = {}
        by_key: dict[str, list[Due]] = defaultdict(list)
        for e in entries:
            by_key[e.entry_key].append(e)
        for key, group in by_key.items():
            issue_key = f"journey:{journey.code}:{index}:{key}"[:64]
            try:
                got = coupons.issue_many(
                    session,
                    ctx,
                    step.template,
                    [e.member_id for e in group],
                    reason=reason,
                    key=issue_key,
                )
            except PatronError as exc:  # a paused or removed template: recorded on the path
                code = exc.code
                out.update({e.id: (f"refused:{code}"[:32], None, True) for e in group})
                continue
            issued = {c.member_id: c.code for c in got.issued}
            report.coupons += len(issued)
            for e in group:
                if e.member_id in issued:
                    out[e.id] = ("issued", issued[e.member_id], True)
                elif e.member_id in got.already:
                    out[e.id] = ("already_issued", None, True)
                else:
                    out[e.id] = (f"refused:{got.refused.get(e.member_id, '')}"[:32], None, True)
        return out
    if step.kind == "points":
        ctx = build(session, SYSTEM, now, tz)
        earned = batch.earn_many(
            session,
            ctx,
            [
                BatchCredit(
                    e.member_id,
                    step.points,
                    "journey",
                    f"{journey.code}:{e.id}:{index}"[:64],
                    f"journey {journey.code}"[:200],
                )
                for e in entries
            ],
        )
        report.points += step.points * len(entries)
        return {
            e.id: ("earned", str(got.posting_id), True)
            for e, got in zip(entries, earned, strict=True)
        }
    # tag
    report.tagged += _tag(session, step.tag, [e.member_id for e in entries], now)
    return {e.id: ("tagged", None, True) for e in entries}


def _tag(session: Session, name: str, member_ids: list[int], now: datetime) -> int:
    tag_name = member_domain.normalize_tag(name)
    tag_id = session.scalar(select(Tag.id).where(Tag.name == tag_name))
    if tag_id is None:
        tag = Tag(name=tag_name, kind="manual", created_at=now)
        session.add(tag)
        session.flush()
        tag_id = tag.id
    rows = [
        {"member_id": m, "tag_id": tag_id, "created_at": now, "created_by": "journeys"}
        for m in sorted(set(member_ids))
    ]
    stmt = _insert(session)(MemberTag.__table__).on_conflict_do_nothing(
        index_elements=["member_id", "tag_id"]
    )
    session.connection().execute(stmt, rows)
    return len(rows)


def _extra_values(
    session: Session, journey: Journey, member_ids: list[int], now: datetime
) -> dict[int, dict[str, str]]:
    if journey.trigger != "points_expiring":
        return {}
    until = now + timedelta(days=journey.params.get("days_before", 14))
    out: dict[int, dict[str, str]] = {}
    for start in range(0, len(member_ids), 1000):
        for mid, pts, first in session.execute(
            select(
                PointsLot.member_id, func.sum(PointsLot.remaining), func.min(PointsLot.expires_at)
            )
            .where(
                PointsLot.member_id.in_(member_ids[start : start + 1000]),
                PointsLot.remaining > 0,
                PointsLot.expires_at > now,
                PointsLot.expires_at <= until,
            )
            .group_by(PointsLot.member_id)
        ):
            out[mid] = {"expiringPoints": f"{int(pts or 0):,}", "expiryDate": str(first)[:10]}
    return out


# ---- the run -------------------------------------------------------------------------------


def run(session: Session, now: datetime, tz: ZoneInfo) -> RunReport:
    """Enter and advance every active journey (in one unit of work)."""
    report = RunReport()
    journeys = list(session.scalars(select(Journey).order_by(Journey.id)))
    paused = {j.id for j in journeys if j.status != "active"}
    for j in journeys:
        if j.status == "active":
            report.entered += enter(session, j, now, tz)
    while advance(session, now, tz, report, paused=paused):
        pass
    return report


def run_job(db: Database, now: datetime, tz: ZoneInfo) -> RunReport:
    with db.unit_of_work() as session:
        return run(session, now, tz)
