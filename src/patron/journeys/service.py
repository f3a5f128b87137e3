"""Journey use cases: save (versioned), pause, resume, read, and a member's recorded path.
Flushes, never commits. The daily run is ``runner.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.coupons.models import CouponTemplate
from patron.errors import Conflict, Invalid, NotFound
from patron.journeys import domain
from patron.journeys.models import Journey, JourneyEntry, JourneyPathStep, JourneyVersion
from patron.members.models import Member
from patron.messaging.models import MessageTemplate
from patron.segments.models import Segment


def _invalid(exc: domain.JourneyError) -> Invalid:
    where = f"Step {exc.step}: " if exc.step else ""
    return Invalid(
        "journey_invalid",
        f"{where}{exc.message[:1].upper()}{exc.message[1:]}.",
        details={"step": exc.step},
    )


def validate(
    session: Session, trigger: str, params: dict[str, Any] | None, steps: list[dict[str, Any]]
) -> tuple[dict[str, int], list[domain.Step]]:
    """The checks made at save time: the shape, no loop, and that every segment, message
    template and coupon template named exists."""
    try:
        clean_params = domain.params_for(trigger, params)
        parsed = domain.parse_steps(steps)
    except domain.JourneyError as exc:
        raise _invalid(exc) from None
    wanted: dict[str, tuple[Any, set[str]]] = {
        "segment": (Segment.code, {s.segment for s in parsed if s.kind == "condition"}),
        "message template": (
            MessageTemplate.code,
            {s.template for s in parsed if s.kind == "send"},
        ),
        "coupon template": (
            CouponTemplate.code,
            {s.template for s in parsed if s.kind == "coupon"},
        ),
    }
    for what, (col, codes) in wanted.items():
        if not codes:
            continue
        found = set(session.scalars(select(col).where(col.in_(sorted(codes)))))
        missing = sorted(codes - found)
        if missing:
            raise Invalid(
                "journey_reference_unknown",
                f"No {what} with code {', '.join(missing)}; create it first or fix the step.",
                details={"missing": missing, "kind": what},
            )
    return clean_params, parsed


def get(session: Session, code: str, *, lock: bool = False) -> Journey:
    stmt = select(Journey).where(Journey.code == code)
    j = session.scalar(stmt.with_for_update() if lock else stmt)
    if j is None:
        raise NotFound("journey_not_found", f"No journey with code {code}.")
    return j


def list_journeys(session: Session) -> list[Journey]:
    return list(session.scalars(select(Journey).order_by(Journey.code)))


def create(
    session: Session,
    actor: Principal,
    *,
    code: str,
    name: str,
    trigger: str,
    params: dict[str, Any] | None,
    steps: list[dict[str, Any]],
    now: datetime,
) -> Journey:
    if session.scalar(select(Journey.id).where(Journey.code == code)) is not None:
        raise Conflict("journey_exists", f"A journey with code {code} exists; change it instead.")
    clean, parsed = validate(session, trigger, params, steps)
    stored = [s.to_dict() for s in parsed]
    j = Journey(
        code=code,
        name=name,
        trigger=trigger,
        params=clean,
        steps=stored,
        status="active",
        version=1,
        created_by=actor.label[:120],
        created_at=now,
        updated_at=now,
    )
    session.add(j)
    session.flush()
    session.add(
        JourneyVersion(
            journey_id=j.id, version=1, trigger=trigger, params=clean, steps=stored, created_at=now
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        "journey.create",
        "journey",
        code,
        None,
        {"trigger": trigger, "steps": len(stored)},
        at=now,
    )
    return j


def change(
    session: Session,
    actor: Principal,
    code: str,
    *,
    name: str | None,
    trigger: str | None,
    params: dict[str, Any] | None,
    steps: list[dict[str, Any]] | None,
    now: datetime,
) -> Journey:
    """A new version for new entrants; members inside keep the version they entered."""
    j = get(session, code, lock=True)
    new_trigger = trigger or j.trigger
    clean, parsed = validate(
        session,
        new_trigger,
        params if params is not None else (j.params if new_trigger == j.trigger else None),
        steps if steps is not None else j.steps,
    )
    stored = [s.to_dict() for s in parsed]
    before = {"version": j.version, "trigger": j.trigger, "steps": len(j.steps)}
    definition_changed = (new_trigger, clean, stored) != (j.trigger, j.params, j.steps)
    if not definition_changed and (name is None or name == j.name):
        return j
    if name is not None:
        j.name = name
    if definition_changed:
        j.trigger, j.params, j.steps = new_trigger, clean, stored
        j.version += 1
        session.add(
            JourneyVersion(
                journey_id=j.id,
                version=j.version,
                trigger=new_trigger,
                params=clean,
                steps=stored,
                created_at=now,
            )
        )
    j.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "journey.change",
        "journey",
        code,
        before,
        {"version": j.version, "trigger": j.trigger, "steps": len(j.steps)},
        at=now,
    )
    return j


def set_paused(
    session: Session, actor: Principal, code: str, *, paused: bool, now: datetime
) -> Journey:
    """A paused journey enters nobody and moves nobody on; resuming picks up where it was."""
    j = get(session, code, lock=True)
    target = "paused" if paused else "active"
    if j.status == target:
        return j
    j.status, j.updated_at = target, now
    session.flush()
    if paused:
        audit.record(
            session,
            actor,
            "journey.pause",
            "journey",
            code,
            {"status": "active"},
            {"status": "paused"},
            at=now,
        )
    else:
        audit.record(
            session,
            actor,
            "journey.resume",
            "journey",
            code,
            {"status": "paused"},
            {"status": "active"},
            at=now,
        )
    return j


def counts(session: Session) -> dict[int, dict[str, int]]:
    """Entries per journey and status."""
    out: dict[int, dict[str, int]] = {}
    for jid, status, n in session.execute(
        select(JourneyEntry.journey_id, JourneyEntry.status, func.count()).group_by(
            JourneyEntry.journey_id, JourneyEntry.status
        )
    ):
        out.setdefault(jid, {})[status] = int(n)
    return out


def member_paths(
    session: Session, member_no: str
) -> list[tuple[Journey, JourneyEntry, list[JourneyPathStep]]]:
    """Every journey a member entered, with what happened at each step."""
    member_id = session.scalar(select(Member.id).where(Member.member_no == member_no))
    if member_id is None:
        raise NotFound("member_not_found", f"No member {member_no}.")
    rows = session.execute(
        select(Journey, JourneyEntry)
        .join(JourneyEntry, JourneyEntry.journey_id == Journey.id)
        .where(JourneyEntry.member_id == member_id)
        .order_by(JourneyEntry.entered_at, JourneyEntry.id)
    ).all()
    ids = [e.id for _, e in rows]
    steps: dict[int, list[JourneyPathStep]] = {}
    if ids:
        for p in session.scalars(
            select(JourneyPathStep)
            .where(JourneyPathStep.entry_id.in_(ids))
            .order_by(JourneyPathStep.entry_id, JourneyPathStep.step)
        ):
            steps.setdefault(p.entry_id, []).append(p)
    return [(j, e, steps.get(e.id, [])) for j, e in rows]
