"""Lifecycle stage history: a daily run stores each member's stage and, for every member whose
stage changed, one transition row (set-based: three statements, only changes written). Cohort
reports read the transitions per month. Flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from patron.errors import Invalid
from patron.members.models import Member
from patron.segments.compile import lifecycle_stage
from patron.segments.domain import STAGES
from patron.segments.models import MemberStage, StageTransition
from patron.segments.service import lifecycle_settings


@dataclass(frozen=True, slots=True)
class StageRun:
    day: date
    changed: int  # transitions written (first stages included)


@dataclass(frozen=True, slots=True)
class Transition:
    month: str
    from_stage: str | None  # None: the member's first recorded stage
    to_stage: str
    members: int


def run_stages(session: Session, *, now: datetime, tz: ZoneInfo) -> StageRun:
    """Record today's stage of every active member; rerunning the same day writes nothing more
    unless a stage changed since (a purchase, new thresholds)."""
    day = now.astimezone(tz).date()
    stage = lifecycle_stage(now, lifecycle_settings(session)).label("stage")
    current = (
        select(Member.id.label("member_id"), stage).where(Member.status == "active").subquery()
    )
    before = session.scalar(select(func.coalesce(func.max(StageTransition.id), 0))) or 0
    session.execute(
        insert(StageTransition).from_select(
            ["member_id", "from_stage", "to_stage", "day", "month"],
            select(
                current.c.member_id,
                MemberStage.stage,
                current.c.stage,
                literal(day),
                literal(day.strftime("%Y-%m")),
            )
            .select_from(current)
            .outerjoin(MemberStage, MemberStage.member_id == current.c.member_id)
            .where(or_(MemberStage.stage.is_(None), MemberStage.stage != current.c.stage)),
        )
    )
    # (rowcount of INSERT … SELECT is not reliable on every driver)
    changed = session.scalar(
        select(func.count()).select_from(StageTransition).where(StageTransition.id > before)
    )
    if changed:
        moved = select(StageTransition.member_id).where(StageTransition.id > before)
        session.execute(
            delete(MemberStage)
            .where(MemberStage.member_id.in_(moved))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            insert(MemberStage).from_select(
                ["member_id", "stage", "since"],
                select(
                    StageTransition.member_id, StageTransition.to_stage, StageTransition.day
                ).where(StageTransition.id > before),
            )
        )
    return StageRun(day=day, changed=changed or 0)


def _month(value: str, field: str) -> str:
    try:
        date.fromisoformat(f"{value}-01")
        ok = len(value) == 7
    except ValueError:
        ok = False
    if not ok:
        raise Invalid(
            "month_invalid", f"{field} must be a month written YYYY-MM, e.g. 2026-03."
        ) from None
    return value


def transitions(
    session: Session, *, since: str | None = None, until: str | None = None
) -> list[Transition]:
    """Members moving between stages per month (inclusive months YYYY-MM), for cohorts."""
    stmt = select(
        StageTransition.month,
        StageTransition.from_stage,
        StageTransition.to_stage,
        func.count(),
    ).group_by(StageTransition.month, StageTransition.from_stage, StageTransition.to_stage)
    if since is not None:
        stmt = stmt.where(StageTransition.month >= _month(since, "since"))
    if until is not None:
        stmt = stmt.where(StageTransition.month <= _month(until, "until"))
    order: dict[str, int] = {s: i for i, s in enumerate(STAGES)}
    rows = [Transition(m, f, t, int(n)) for m, f, t, n in session.execute(stmt)]
    rows.sort(
        key=lambda r: (
            r.month,
            -1 if r.from_stage is None else order[r.from_stage],
            order[r.to_stage],
        )
    )
    return rows


def stage_counts(session: Session) -> dict[str, int]:
    """Members per stage as of the last run."""
    rows = session.execute(select(MemberStage.stage, func.count()).group_by(MemberStage.stage))
    counts: dict[str, int] = dict.fromkeys(STAGES, 0)
    counts.update({s: int(n) for s, n in rows})
    return counts
