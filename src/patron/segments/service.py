"""Segment use cases: preview a tree, save, change (version + 1), read with a live count.
Flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.errors import Conflict, Invalid, NotFound
from patron.members.models import Member
from patron.program import service as program
from patron.segments import domain
from patron.segments.compile import compile_rule
from patron.segments.models import Segment

SAMPLE_SIZE = 20


def lifecycle_settings(session: Session) -> domain.LifecycleSettings:
    return program.get_section(session, domain.LIFECYCLE_SECTION, domain.LifecycleSettings)


def parse(raw: Any) -> domain.Group:
    try:
        return domain.parse_rule(raw)
    except domain.SegmentRuleError as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise Invalid(
            "segment_rule_invalid",
            f"The segment rule is not valid{where}: {exc.message}.",
            details={"path": exc.path},
        ) from None


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    sample: list[str]


def preview(session: Session, rule: domain.Group, *, now: datetime, tz: ZoneInfo) -> Preview:
    ids = compile_rule(rule, now=now, tz=tz, lifecycle=lifecycle_settings(session)).subquery()
    count = session.scalar(select(func.count()).select_from(ids)) or 0
    sample = session.scalars(
        select(Member.member_no)
        .where(Member.id.in_(select(ids.c.id)))
        .order_by(Member.member_no)
        .limit(SAMPLE_SIZE)
    ).all()
    return Preview(count=count, sample=list(sample))


def member_ids(session: Session, rule: domain.Group, *, now: datetime, tz: ZoneInfo) -> set[int]:
    stmt = compile_rule(rule, now=now, tz=tz, lifecycle=lifecycle_settings(session))
    return set(session.scalars(stmt))


def get(session: Session, code: str, *, lock: bool = False) -> Segment:
    stmt = select(Segment).where(Segment.code == code)
    # A change locks the row so two concurrent changes make two versions, not one.
    seg = session.scalar(stmt.with_for_update() if lock else stmt)
    if seg is None:
        raise NotFound("segment_not_found", f"No segment with code {code}.")
    return seg


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.code)))


def create(
    session: Session, *, code: str, name: str, rule: domain.Group, actor: str, now: datetime
) -> Segment:
    if session.scalar(select(Segment.id).where(Segment.code == code)) is not None:
        raise Conflict("segment_exists", f"A segment with code {code} exists; change it instead.")
    seg = Segment(
        code=code,
        name=name,
        rule=rule.model_dump(mode="json", exclude_none=True),
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(seg)
    session.flush()
    return seg


def change(
    session: Session,
    code: str,
    *,
    name: str | None,
    rule: domain.Group | None,
    now: datetime,
) -> Segment:
    seg = get(session, code, lock=True)
    new_rule = rule.model_dump(mode="json", exclude_none=True) if rule is not None else seg.rule
    new_name = name if name is not None else seg.name
    if new_rule != seg.rule or new_name != seg.name:
        seg.rule, seg.name = new_rule, new_name
        seg.version += 1
        seg.updated_at = now
        session.flush()
    return seg
