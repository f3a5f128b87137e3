"""Dynamic tags: a tag (kind ``rule``) whose members are those a segment rule tree selects.

A recompute works by difference, set-based, in a handful of statements whatever the number of
members: the members the rule selects that lack the tag are written to the history as
``added`` and then given the tag from those history rows; the members holding the tag that
the rule no longer selects are written as ``removed`` and then lose it. Nothing is written for
members whose membership did not change. Manual tags are never touched. Flushes, never commits.

A rule may use manual tags and rule tags defined before it (recomputed in that order), never
itself or a later one, so the tags cannot depend on each other in a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.db import UTCDateTime
from patron.errors import Conflict, Invalid, NotFound
from patron.members.domain import normalize_tag
from patron.members.models import Member, MemberTag, Tag
from patron.orders.models import Order, OrderReturn
from patron.segments import domain
from patron.segments.compile import rule_condition
from patron.segments.models import TagHistory, TagRule
from patron.segments.service import lifecycle_settings, parse

#: who a tag given by a rule is "created by" on the member's tag list
RULE_ACTOR = "rule"
SOURCES = ("job", "order", "manual")


@dataclass(frozen=True, slots=True)
class Recomputed:
    tag: str
    added: int
    removed: int


def _tag_names(rule: domain.Group) -> set[str]:
    names: set[str] = set()
    for r in rule.rules:
        if isinstance(r, domain.Group):
            names |= _tag_names(r)
        elif isinstance(r, domain.TagCond):
            names |= set(r.values)
    return names


def _check_order(session: Session, name: str, tag_id: int | None, rule: domain.Group) -> None:
    used = _tag_names(rule)
    if name in used:
        raise Invalid("tag_rule_loop", f"The rule of tag {name!r} cannot use the tag itself.")
    if tag_id is None or not used:
        return  # a new tag comes after every existing one
    later = session.scalars(
        select(Tag.name).where(Tag.name.in_(sorted(used)), Tag.kind == "rule", Tag.id > tag_id)
    ).all()
    if later:
        raise Invalid(
            "tag_rule_loop",
            f"The rule of tag {name!r} uses {', '.join(sorted(later))}, defined after it; "
            "a rule may only use manual tags and rule tags defined before it.",
        )


def get(session: Session, name: str, *, lock: bool = False) -> tuple[Tag, TagRule]:
    stmt = select(Tag, TagRule).join(TagRule, TagRule.tag_id == Tag.id).where(Tag.name == name)
    row = session.execute(stmt.with_for_update(of=TagRule) if lock else stmt).first()
    if row is None:
        raise NotFound("tag_rule_not_found", f"No tag computed by a rule is named {name!r}.")
    return row[0], row[1]


def is_rule_tag(session: Session, name: str) -> bool:
    stmt = select(TagRule.tag_id).join(Tag, Tag.id == TagRule.tag_id).where(Tag.name == name)
    return session.scalar(stmt) is not None


def list_rules(session: Session) -> list[tuple[Tag, TagRule, int]]:
    """Rule tags in recompute order, with their member counts."""
    counts = select(MemberTag.tag_id, func.count().label("n")).group_by(MemberTag.tag_id).subquery()
    rows = session.execute(
        select(Tag, TagRule, func.coalesce(counts.c.n, 0))
        .join(TagRule, TagRule.tag_id == Tag.id)
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(Tag.id)
    )
    return [(t, r, int(n)) for t, r, n in rows]


def _snapshot(tag: Tag, rule: TagRule) -> dict[str, Any]:
    return {
        "name": tag.name,
        "description": rule.description,
        "rule": rule.rule,
        "on_order": rule.on_order,
        "version": rule.version,
    }


def define(
    session: Session,
    actor: Principal,
    *,
    name: str,
    description: str,
    rule: domain.Group,
    on_order: bool,
    now: datetime,
    tz: ZoneInfo,
) -> tuple[Tag, TagRule, Recomputed]:
    """A new rule tag, computed at once."""
    tag_name = normalize_tag(name)
    existing = session.scalar(select(Tag).where(Tag.name == tag_name))
    if existing is not None:
        what = "computed by a rule" if existing.kind == "rule" else "set by hand"
        raise Conflict(
            "tag_exists", f"A tag named {tag_name!r} exists ({what}); choose another name."
        )
    _check_order(session, tag_name, None, rule)
    tag = Tag(name=tag_name, kind="rule", created_at=now)
    session.add(tag)
    session.flush()
    tr = TagRule(
        tag_id=tag.id,
        description=description,
        rule=rule.model_dump(mode="json", exclude_none=True),
        version=1,
        on_order=on_order,
        created_by=actor.label,
        created_at=now,
        updated_at=now,
        added_last=0,
        removed_last=0,
        order_mark=0,
        return_mark=0,
    )
    session.add(tr)
    session.flush()
    audit.record(
        session, actor, "tag_rule.create", "tag", tag_name, None, _snapshot(tag, tr), at=now
    )
    done = recompute(session, tag, tr, now=now, tz=tz, source="manual")
    # Orders recorded until now are in that computation: the after-order pass starts here.
    session.execute(
        update(TagRule)
        .where(TagRule.tag_id == tag.id)
        .values(
            order_mark=select(func.coalesce(func.max(Order.id), 0)).scalar_subquery(),
            return_mark=select(func.coalesce(func.max(OrderReturn.id), 0)).scalar_subquery(),
        )
    )
    session.expire(tr)
    return tag, tr, done


def change(
    session: Session,
    actor: Principal,
    name: str,
    *,
    description: str | None,
    rule: domain.Group | None,
    on_order: bool | None,
    now: datetime,
    tz: ZoneInfo,
) -> tuple[Tag, TagRule, Recomputed | None]:
    """Change a rule tag; a new rule is recomputed at once (version + 1)."""
    tag, tr = get(session, name, lock=True)
    before = _snapshot(tag, tr)
    new_rule = rule.model_dump(mode="json", exclude_none=True) if rule is not None else tr.rule
    if rule is not None:
        _check_order(session, tag.name, tag.id, rule)
    changed = (
        new_rule != tr.rule
        or (description is not None and description != tr.description)
        or (on_order is not None and on_order != tr.on_order)
    )
    if not changed:
        return tag, tr, None
    rule_changed = new_rule != tr.rule
    tr.rule = new_rule
    if description is not None:
        tr.description = description
    if on_order is not None:
        tr.on_order = on_order
    tr.version += 1
    tr.updated_at = now
    session.flush()
    audit.record(
        session, actor, "tag_rule.change", "tag", tag.name, before, _snapshot(tag, tr), at=now
    )
    done = recompute(session, tag, tr, now=now, tz=tz, source="manual") if rule_changed else None
    return tag, tr, done


def _written(session: Session, before: int, tag_id: int, change: str) -> int:
    # (rowcount is not reliable for INSERT … SELECT on every driver: psycopg can answer -1)
    return (
        session.scalar(
            select(func.count()).where(
                TagHistory.id > before, TagHistory.tag_id == tag_id, TagHistory.change == change
            )
        )
        or 0
    )


def recompute(
    session: Session,
    tag: Tag,
    tr: TagRule,
    *,
    now: datetime,
    tz: ZoneInfo,
    source: str,
    member_ids: Any = None,
) -> Recomputed:
    """Bring the tag's members in line with its rule, by difference. ``member_ids`` (a select
    of ids) limits the recompute to those members (after their orders)."""
    rule = parse(tr.rule)
    cond = rule_condition(rule, now=now, tz=tz, lifecycle=lifecycle_settings(session))
    at = literal(now, UTCDateTime())
    # Aliased: a tag condition inside the rule reads member_tags itself, uncorrelated.
    held = aliased(MemberTag)
    only: list[ColumnElement[bool]] = []
    held_only: list[ColumnElement[bool]] = []
    if member_ids is not None:
        only.append(Member.id.in_(member_ids))
        held_only.append(held.member_id.in_(member_ids))
    before = session.scalar(select(func.coalesce(func.max(TagHistory.id), 0))) or 0

    # The members the rule selects, evaluated first and on their own (a materialised CTE: the
    # same plan as a preview), then compared with the holders through a hashed NOT IN. Joined
    # with the holders instead, the planner may evaluate the rule's subqueries for everyone.
    wanted = (
        select(Member.id.label("id")).where(cond, *only).cte("wanted").prefix_with("MATERIALIZED")
    )
    session.execute(
        insert(TagHistory).from_select(
            ["tag_id", "member_id", "change", "source", "at"],
            select(literal(tag.id), wanted.c.id, literal("added"), literal(source), at).where(
                wanted.c.id.not_in(select(held.member_id).where(held.tag_id == tag.id))
            ),
        )
    )
    added = _written(session, before, tag.id, "added")
    if added:
        session.execute(
            insert(MemberTag).from_select(
                ["member_id", "tag_id", "created_at", "created_by"],
                select(
                    TagHistory.member_id, TagHistory.tag_id, TagHistory.at, literal(RULE_ACTOR)
                ).where(
                    TagHistory.id > before,
                    TagHistory.tag_id == tag.id,
                    TagHistory.change == "added",
                ),
            )
        )
    # The rule is evaluated for the holders only (joined, not in a subquery the planner would
    # turn into an evaluation over every member); a NULL of the condition counts as "no".
    session.execute(
        insert(TagHistory).from_select(
            ["tag_id", "member_id", "change", "source", "at"],
            select(literal(tag.id), held.member_id, literal("removed"), literal(source), at)
            .select_from(held)
            .join(Member, Member.id == held.member_id)
            .where(held.tag_id == tag.id, *held_only, not_(func.coalesce(cond, false()))),
        )
    )
    removed = _written(session, before, tag.id, "removed")
    if removed:
        gone = select(TagHistory.member_id).where(
            TagHistory.id > before, TagHistory.tag_id == tag.id, TagHistory.change == "removed"
        )
        session.execute(
            delete(MemberTag)
            .where(MemberTag.tag_id == tag.id, MemberTag.member_id.in_(gone))
            .execution_options(synchronize_session=False)
        )
    values: dict[str, Any] = {"added_last": added, "removed_last": removed}
    if member_ids is None:
        values["computed_at"] = now
    session.execute(update(TagRule).where(TagRule.tag_id == tag.id).values(**values))
    session.expire(tr)
    return Recomputed(tag=tag.name, added=added or 0, removed=removed or 0)


def recompute_all(session: Session, *, now: datetime, tz: ZoneInfo) -> list[Recomputed]:
    """The scheduled full recompute of every rule tag, in definition order."""
    rows = session.execute(
        select(Tag, TagRule)
        .join(TagRule, TagRule.tag_id == Tag.id)
        .order_by(Tag.id)
        .with_for_update(of=TagRule)
    ).all()
    return [recompute(session, t, r, now=now, tz=tz, source="job") for t, r in rows]


def recompute_after_orders(session: Session, *, now: datetime, tz: ZoneInfo) -> list[Recomputed]:
    """Recompute the ``on_order`` tags for the members with orders or returns recorded since
    the last pass (by order and return id), then move the marks. A late commit of an older id
    is caught by the next full recompute."""
    rows = session.execute(
        select(Tag, TagRule)
        .join(TagRule, TagRule.tag_id == Tag.id)
        .where(TagRule.on_order.is_(True))
        .order_by(Tag.id)
        .with_for_update(of=TagRule)
    ).all()
    if not rows:
        return []
    top_order = session.scalar(select(func.coalesce(func.max(Order.id), 0))) or 0
    top_return = session.scalar(select(func.coalesce(func.max(OrderReturn.id), 0))) or 0
    out = []
    for tag, tr in rows:
        o_mark, r_mark = tr.order_mark, tr.return_mark
        if o_mark >= top_order and r_mark >= top_return:
            continue
        members = (
            select(Order.member_id)
            .where(Order.id > o_mark, Order.id <= top_order)
            .union(
                select(OrderReturn.member_id).where(
                    OrderReturn.id > r_mark, OrderReturn.id <= top_return
                )
            )
        )
        out.append(recompute(session, tag, tr, now=now, tz=tz, source="order", member_ids=members))
        session.execute(
            update(TagRule)
            .where(TagRule.tag_id == tag.id)
            .values(order_mark=top_order, return_mark=top_return)
        )
    return out


def history(
    session: Session, name: str, *, limit: int = 100, before_id: int | None = None
) -> list[tuple[TagHistory, str]]:
    """The tag's membership changes, newest first, with the member numbers."""
    tag, _ = get(session, name)
    stmt = (
        select(TagHistory, Member.member_no)
        .join(Member, Member.id == TagHistory.member_id)
        .where(TagHistory.tag_id == tag.id)
    )
    if before_id is not None:
        stmt = stmt.where(TagHistory.id < before_id)
    rows = session.execute(stmt.order_by(TagHistory.id.desc()).limit(limit))
    return [(h, no) for h, no in rows]
