"""Per-member outputs of the scores job beside the scores: category replenishment dates and
product / coupon recommendations (tables ``member_replenishment`` and
``member_recommendations``), and their holdout checks for ``patron analytics evaluate``.

Reads are set-based (one grouped statement each); the numbers come from ``nextbuy`` and
``recommend`` on NumPy / SciPy arrays; each table is replaced with one DELETE and one
multi-row INSERT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, distinct, func, insert, select
from sqlalchemy.orm import Session

from patron.analytics import nextbuy, recommend
from patron.analytics.models import MemberRecommendation, MemberReplenishment
from patron.catalog.models import Category, Product
from patron.coupons.models import Coupon, CouponTemplate
from patron.members.models import Member
from patron.orders.models import Order, OrderLine

ERASED = "erased"
RETURNED = "returned"
EPOCH = date(1970, 1, 1)


def day_numbers(values: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.array(list(values), dtype="datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class Lines:
    """Distinct (member, item, day) triples of purchased order lines; items and categories as
    indices into ``skus`` / ``categories``."""

    member: np.ndarray[Any, np.dtype[np.int64]]
    sku: np.ndarray[Any, np.dtype[np.int64]]
    category: np.ndarray[Any, np.dtype[np.int64]]
    day: np.ndarray[Any, np.dtype[np.int64]]
    skus: list[str]
    categories: list[str]


def purchased_lines(session: Session, as_of: date) -> Lines:
    """Order lines not fully returned, of orders not fully returned, of members not erased."""
    rows = session.execute(
        select(Order.member_id, OrderLine.sku, OrderLine.category, Order.business_date)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Member, Member.id == Order.member_id)
        .where(
            Order.status != RETURNED,
            Order.business_date <= as_of,
            OrderLine.returned_quantity < OrderLine.quantity,
            Member.status != ERASED,
        )
        .distinct()
    ).all()
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return Lines(z, z, z, z, [], [])
    member, sku, category, day = zip(*rows, strict=True)
    skus, sku_idx = np.unique(np.asarray(sku, dtype=object), return_inverse=True)
    cats, cat_idx = np.unique(np.asarray(category, dtype=object), return_inverse=True)
    return Lines(
        np.asarray(member, dtype=np.int64),
        sku_idx.astype(np.int64),
        cat_idx.astype(np.int64),
        day_numbers(day),
        [str(s) for s in skus],
        [str(c) for c in cats],
    )


def redeemed_coupons(session: Session, as_of: date) -> tuple[Any, Any, Any, list[str]]:
    """(member, template index, business day) of coupons redeemed on orders; template codes."""
    rows = session.execute(
        select(Coupon.member_id, CouponTemplate.code, Order.business_date)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .join(Order, Order.id == Coupon.order_id)
        .where(Coupon.status == "redeemed", Order.business_date <= as_of)
        .distinct()
    ).all()
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, []
    member, code, day = zip(*rows, strict=True)
    codes, idx = np.unique(np.asarray(code, dtype=object), return_inverse=True)
    return (
        np.asarray(member, dtype=np.int64),
        idx.astype(np.int64),
        day_numbers(day),
        [str(c) for c in codes],
    )


def _table(model: Any) -> Any:
    """The model's table, for Core executemany (no ORM bookkeeping per row)."""
    return model.metadata.tables[model.__tablename__]


def _to_date(n: int) -> date:
    return EPOCH + timedelta(days=int(n))


# --- the job's writes ---------------------------------------------------------------------------


def write_replenishment(session: Session, lines: Lines, as_of: date) -> dict[str, int]:
    """Replace ``member_replenishment``: each member's categories with a cycle whose due date
    is not more than one cycle past (a lapsed habit is no hint). Returns category → cycle."""
    session.execute(delete(MemberReplenishment))
    cycles, rep = nextbuy.replenishment(lines.member, lines.category, lines.day)
    today = int(np.datetime64(as_of, "D").astype(np.int64))
    due = rep.last_day + rep.cycle_days
    keep = due >= today - rep.cycle_days
    if keep.any():
        session.connection().execute(
            insert(_table(MemberReplenishment)),
            [
                {
                    "member_id": int(m),
                    "category": lines.categories[int(c)],
                    "last_day": _to_date(d),
                    "cycle_days": int(cy),
                    "due_on": _to_date(d + cy),
                }
                for m, c, d, cy in zip(
                    rep.member[keep],
                    rep.category[keep],
                    rep.last_day[keep],
                    rep.cycle_days[keep],
                    strict=True,
                )
            ],
        )
    return {lines.categories[c]: v for c, v in cycles.items()}


def _write_top(
    session: Session,
    kind: str,
    member_ids: Any,
    top: recommend.Top,
    names: list[str],
    as_of: date,
) -> int:
    r, c = np.nonzero(top.items >= 0)
    if r.size == 0:
        return 0
    session.connection().execute(
        insert(_table(MemberRecommendation)),
        [
            {
                "member_id": int(member_ids[i]),
                "kind": kind,
                "rank": int(j) + 1,
                "item": names[int(top.items[i, j])],
                "score": round(float(top.scores[i, j]), 6),
                "as_of": as_of,
            }
            for i, j in zip(r, c, strict=True)
        ],
    )
    return int(r.size)


def _popular(pop: Any, allowed: Any, names: list[str], k: int) -> list[str]:
    order = np.argsort(-np.where(allowed, pop, -1.0), kind="stable")
    return [names[int(i)] for i in order[:k] if allowed[i] and pop[i] > 0]


def write_recommendations(
    session: Session, lines: Lines, as_of: date, *, reads: Session | None = None
) -> dict[str, Any]:
    """Replace ``member_recommendations`` for every member with a purchase; the popular lists
    (for members without one) go in the returned summary, kept in the run's report. The
    redeemed coupons are read from ``reads`` (the replica, like ``lines``) when given."""
    session.execute(delete(MemberRecommendation))
    out: dict[str, Any] = {
        "products": 0,
        "coupons": 0,
        "popular_products": [],
        "popular_coupons": [],
    }
    if lines.member.size:
        inactive = set(session.scalars(select(Product.sku).where(Product.is_active.is_(False))))
        allowed = np.array([s not in inactive for s in lines.skus], dtype=bool)
        ids, who = np.unique(lines.member, return_inverse=True)
        x = recommend.matrix(who, lines.sku, ids.size, len(lines.skus))
        top = recommend.recommend(x, allowed=allowed)
        out["products"] = _write_top(session, "product", ids, top, lines.skus, as_of)
        out["popular_products"] = _popular(
            recommend.popularity(x), allowed, lines.skus, recommend.K
        )
    member, item, _, codes = redeemed_coupons(reads or session, as_of)
    active = set(
        session.scalars(select(CouponTemplate.code).where(CouponTemplate.status == "active"))
    )
    if member.size:
        allowed_c = np.array([c in active for c in codes], dtype=bool)
        ids, who = np.unique(member, return_inverse=True)
        x = recommend.matrix(who, item, ids.size, len(codes))
        top = recommend.recommend(x, allowed=allowed_c)
        out["coupons"] = _write_top(session, "coupon", ids, top, codes, as_of)
        out["popular_coupons"] = _popular(recommend.popularity(x), allowed_c, codes, recommend.K)
    return out


# --- what the portal shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    key: str  # SKU, coupon template code or category code
    name: str


def due_categories(
    session: Session, member_id: int, today: date, *, within: int = 7
) -> list[Suggestion]:
    """Categories the member is due to buy again (due in the next ``within`` days or overdue
    by less than a cycle), soonest first, with the category's name from the catalogue."""
    rows = session.execute(
        select(MemberReplenishment.category, Category.name)
        .outerjoin(Category, Category.code == MemberReplenishment.category)
        .where(
            MemberReplenishment.member_id == member_id,
            MemberReplenishment.due_on <= today + timedelta(days=within),
        )
        .order_by(MemberReplenishment.due_on, MemberReplenishment.category)
        .limit(3)
    ).all()
    return [Suggestion(code, name or code) for code, name in rows]


def for_member(
    session: Session, member_id: int, kind: str, popular: list[str], *, limit: int = 4
) -> list[Suggestion]:
    """The member's stored recommendations of ``kind`` (product or coupon), or the popular
    list for a member the job has not scored (new members), with names from the catalogue
    or the coupon templates; items no longer offered are left out."""
    keys = list(
        session.scalars(
            select(MemberRecommendation.item)
            .where(MemberRecommendation.member_id == member_id, MemberRecommendation.kind == kind)
            .order_by(MemberRecommendation.rank)
        )
    )
    if not keys:
        had: set[str] = set()
        if kind == "product":
            had = set(
                session.scalars(
                    select(OrderLine.sku)
                    .join(Order, Order.id == OrderLine.order_id)
                    .where(Order.member_id == member_id)
                    .distinct()
                )
            )
        keys = [k for k in popular if k not in had]
    if not keys:
        return []
    if kind == "product":
        found = session.execute(
            select(Product.sku, Product.name).where(Product.sku.in_(keys), Product.is_active)
        ).all()
    else:
        found = session.execute(
            select(CouponTemplate.code, CouponTemplate.name).where(
                CouponTemplate.code.in_(keys), CouponTemplate.status == "active"
            )
        ).all()
    names = {str(k): str(v) for k, v in found}
    return [Suggestion(k, names[k]) for k in keys if k in names][:limit]


def count_recommended(session: Session) -> int:
    return int(session.scalar(select(func.count(distinct(MemberRecommendation.member_id)))) or 0)


@dataclass(frozen=True)
class ForYou:
    """What the portal's home page suggests: categories due again, products and coupons."""

    due: list[Suggestion]
    products: list[Suggestion]
    coupons: list[Suggestion]


def for_you(session: Session, member_id: int, today: date) -> ForYou:
    from patron.analytics.models import ModelRun

    report = session.scalar(
        select(ModelRun.report)
        .where(ModelRun.kind == "scores")
        .order_by(ModelRun.id.desc())
        .limit(1)
    )
    recs = (report or {}).get("recommendations") or {}
    return ForYou(
        due=due_categories(session, member_id, today),
        products=for_member(session, member_id, "product", list(recs.get("popular_products", []))),
        coupons=for_member(session, member_id, "coupon", list(recs.get("popular_coupons", []))),
    )
