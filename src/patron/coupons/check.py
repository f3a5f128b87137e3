"""``patron check`` for coupons: each query returns the offending rows only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from patron.coupons.models import Coupon, CouponHistory, CouponTemplate
from patron.orders.models import Order, OrderLine

LIMIT = 100  # violations reported per check


def run_check(
    session: Session,
    *,
    now: datetime | None = None,  # noqa: ARG001 - the registry's signature
    member_id: int | None = None,
) -> list[str]:
    out: list[str] = []

    def only(col: Any) -> Any:
        return col == member_id if member_id is not None else literal(True)

    # 1. a redeemed coupon belongs to exactly one order, of its own member; others to none
    for code, status, order_id, owner in session.execute(
        select(Coupon.code, Coupon.status, Coupon.order_id, Order.member_id)
        .outerjoin(Order, Order.id == Coupon.order_id)
        .where(
            only(Coupon.member_id),
            (
                (Coupon.status == "redeemed")
                & (Order.id.is_(None) | (Order.member_id != Coupon.member_id))
            )
            | ((Coupon.status != "redeemed") & Coupon.order_id.is_not(None)),
        )
        .limit(LIMIT)
    ):
        if status == "redeemed" and owner is None:
            out.append(f"coupon {code} is redeemed but names no recorded order")
        elif status == "redeemed":
            out.append(f"coupon {code} is redeemed on order {order_id} of another member")
        else:
            out.append(f"coupon {code} is {status} but still names order {order_id}")

    # 2. issued counts: the template's counter = its coupons, never above its quantity
    if member_id is None:
        counted = (
            select(Coupon.template_id.label("tid"), func.count().label("n"))
            .group_by(Coupon.template_id)
            .subquery()
        )
        for code, issued, total, n in session.execute(
            select(
                CouponTemplate.code,
                CouponTemplate.issued_count,
                CouponTemplate.total_quantity,
                func.coalesce(counted.c.n, 0),
            )
            .outerjoin(counted, counted.c.tid == CouponTemplate.id)
            .where(
                (CouponTemplate.issued_count != func.coalesce(counted.c.n, 0))
                | (
                    func.coalesce(counted.c.n, 0)
                    > func.coalesce(CouponTemplate.total_quantity, func.coalesce(counted.c.n, 0))
                )
            )
            .limit(LIMIT)
        ):
            if total is not None and n > total:
                out.append(
                    f"coupon template {code} has {n} coupons issued, above its quantity {total}"
                )
            if issued != n:
                out.append(f"coupon template {code} counts {issued} issued but has {n} coupons")

    # 3. per-member quantities
    for code, mid, n, limit in session.execute(
        select(CouponTemplate.code, Coupon.member_id, func.count(), CouponTemplate.per_member_limit)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(only(Coupon.member_id))
        .group_by(CouponTemplate.code, Coupon.member_id, CouponTemplate.per_member_limit)
        .having(func.count() > CouponTemplate.per_member_limit)
        .limit(LIMIT)
    ):
        out.append(
            f"member {mid} holds {n} coupons of {code}, above the limit of {limit} per member"
        )

    # 4. the history's last status is the coupon's status
    last = (
        select(CouponHistory.coupon_id.label("cid"), func.max(CouponHistory.id).label("hid"))
        .group_by(CouponHistory.coupon_id)
        .subquery()
    )
    for code, status, recorded in session.execute(
        select(Coupon.code, Coupon.status, CouponHistory.status)
        .outerjoin(last, last.c.cid == Coupon.id)
        .outerjoin(CouponHistory, CouponHistory.id == last.c.hid)
        .where(
            only(Coupon.member_id),
            CouponHistory.status.is_(None) | (CouponHistory.status != Coupon.status),
        )
        .limit(LIMIT)
    ):
        out.append(f"coupon {code} is {status} but its history ends with {recorded or 'nothing'}")

    # 5. a redeemed free gift's line is on its order: the gift's SKU, at no price
    out.extend(_gift_lines(session, only))
    return out


def _gift_lines(session: Session, only: Any) -> list[str]:
    out: list[str] = []
    gifts = select(Coupon.code, Coupon.order_id, Coupon.allocation, CouponTemplate.rules).join(
        CouponTemplate, CouponTemplate.id == Coupon.template_id
    )
    rows = session.execute(
        gifts.where(
            only(Coupon.member_id),
            CouponTemplate.kind == "free_gift",
            Coupon.status == "redeemed",
        ).order_by(Coupon.id)
    ).yield_per(1000)
    for chunk in rows.partitions():
        wanted = [(r.order_id, int(no)) for r in chunk for no in (r.allocation or {})]
        if not wanted:
            continue
        lines = {
            (ln.order_id, ln.line_no): ln
            for ln in session.execute(
                select(
                    OrderLine.order_id,
                    OrderLine.line_no,
                    OrderLine.sku,
                    OrderLine.unit_price_fen,
                    OrderLine.net_fen,
                ).where(OrderLine.order_id.in_({oid for oid, _ in wanted}))
            )
        }
        for r in chunk:
            for no in r.allocation or {}:
                ln = lines.get((r.order_id, int(no)))
                sku = r.rules.get("gift_sku")
                if ln is None or ln.sku != sku or ln.unit_price_fen or ln.net_fen:
                    out.append(
                        f"coupon {r.code} gave {sku} on order {r.order_id}, but line {no} of "
                        "the order is not that gift at no price"
                    )
            if len(out) >= LIMIT:
                return out
    return out
