"""Segment use cases: preview a tree, save, change (version + 1), read with a live count.
Flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.catalog.models import Category, Product
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger.models import PointsAccount
from patron.members.models import Member
from patron.program import service as program
from patron.segments import domain
from patron.segments.compile import compile_rule
from patron.segments.models import Segment, SegmentVersion
from patron.tiers.models import MemberTier

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


def _recommended(node: domain.Group, path: str = "") -> Iterator[tuple[str, Any]]:
    for i, r in enumerate(node.rules):
        here = f"{path}rules/{i}"
        if isinstance(r, domain.Group):
            yield from _recommended(r, here + "/")
        elif isinstance(r, domain.RecommendedCond):
            yield here, r


def check_references(session: Session, rule: domain.Group) -> None:
    """The SKUs and categories of "recommended" conditions exist in the catalogue: a typo
    would otherwise select nobody, silently. Checked when a tree is previewed or saved."""
    for path, c in _recommended(rule):
        for name, model, col, wanted in (
            ("skus", Product, Product.sku, c.skus),
            ("categories", Category, Category.code, c.categories),
        ):
            if not wanted:
                continue
            found = set(session.scalars(select(col).where(col.in_(wanted))))
            unknown = [w for w in dict.fromkeys(wanted) if w not in found]
            if unknown:
                what = "product with SKU" if model is Product else "category with code"
                raise Invalid(
                    "segment_rule_invalid",
                    f"The segment rule is not valid at {path}/{name}: no {what} "
                    f"{', '.join(unknown)}.",
                    details={"path": f"{path}/{name}", "unknown": unknown},
                )


def parse_checked(session: Session, raw: Any) -> domain.Group:
    """``parse``, then ``check_references``: for trees people write (preview, save)."""
    rule = parse(raw)
    check_references(session, rule)
    return rule


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


def exists(session: Session, code: str) -> bool:
    return session.scalar(select(Segment.id).where(Segment.code == code)) is not None


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
    _keep_version(session, seg, actor)
    return seg


def _keep_version(session: Session, seg: Segment, actor: str) -> None:
    session.add(
        SegmentVersion(
            segment_id=seg.id,
            version=seg.version,
            name=seg.name,
            rule=seg.rule,
            created_by=actor,
            created_at=seg.updated_at,
        )
    )
    session.flush()


def versions(session: Session, code: str) -> list[SegmentVersion]:
    """Every saved version of the segment, newest first."""
    seg = get(session, code)
    return list(
        session.scalars(
            select(SegmentVersion)
            .where(SegmentVersion.segment_id == seg.id)
            .order_by(SegmentVersion.version.desc())
        )
    )


def export_batches(
    session: Session, rule: domain.Group, *, now: datetime, tz: ZoneInfo, batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The members a tree selects, for an export: number, tier, city, region, registration
    and points, ordered by number, read from one cursor in batches (the rule is evaluated
    once). No contact data."""
    ids = compile_rule(rule, now=now, tz=tz, lifecycle=lifecycle_settings(session))
    balance = (
        select(PointsAccount.available)
        .where(PointsAccount.member_id == Member.id)
        .scalar_subquery()
    )
    tier = select(MemberTier.tier_code).where(MemberTier.member_id == Member.id).scalar_subquery()
    stmt = (
        select(
            Member.member_no,
            tier,
            Member.city,
            Member.region,
            Member.created_at,
            func.coalesce(balance, 0),
        )
        .where(Member.id.in_(ids))
        .order_by(Member.member_no)
        .execution_options(yield_per=batch)
    )
    for part in session.execute(stmt).partitions(batch):
        yield [tuple(r) for r in part]


def change(
    session: Session,
    code: str,
    *,
    name: str | None,
    rule: domain.Group | None,
    now: datetime,
    actor: str = "system",
) -> Segment:
    seg = get(session, code, lock=True)
    new_rule = rule.model_dump(mode="json", exclude_none=True) if rule is not None else seg.rule
    new_name = name if name is not None else seg.name
    if new_rule != seg.rule or new_name != seg.name:
        seg.rule, seg.name = new_rule, new_name
        seg.version += 1
        seg.updated_at = now
        session.flush()
        _keep_version(session, seg, actor)
    return seg
