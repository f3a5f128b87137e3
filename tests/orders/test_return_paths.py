"""Every return is planned (``orders.return_plan``) and written set-based; the rows it writes
are those of the ledger's own flows applied posting by posting (``ledger.flows.refund``, then
``ledger.flows.earn`` for the points given back, then the coupons' restore). Twin members get
the same history in lockstep — one returns through the API, the other through the flows below
— for the cases that once took that general path: a coupon-paid order, a member in debt, lots
due to expire, points held by a return window."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from patron.audit import service as audit
from patron.coupons.models import Coupon, CouponHistory, CouponTemplate
from patron.coupons.service import get_settings as coupon_settings
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.models import PointsHold, PointsRefund
from patron.members.models import Member
from patron.orders import returns
from patron.orders.models import Order, OrderReturn, ReturnLine
from patron.webhooks import events as webhook_events
from patron.webhooks import service as webhooks
from tests.coupons.test_coupons_api import THRESHOLD, basket, commit, issue, put_template
from tests.orders.test_write_path import _rows, _snapshot, _untag


def _by_flows(session, ctx, order, member_no, parts, data, digest):
    """The reference: the ledger's flows, posting by posting, then the coupons."""
    by_no = {ln.line_no: ln for ln in order.lines}
    for part in parts:
        ln = by_no[part.line_no]
        ln.returned_quantity += part.quantity
        ln.refunded_fen += part.refund_fen
        ln.refunded_points += part.points
    ledger.begin(session, ctx, order.member_id)
    refund_fen = sum(p.refund_fen for p in parts)
    points_back = sum(p.points for p in parts)
    source_id = f"{order.source}:{order.external_id}"
    changed, clawed = None, (0, 0, 0)
    if order.paid_fen > 0 and refund_fen > 0 and (order.points_earned or order.growth_earned):
        r = flows.refund(
            session,
            ctx,
            order.member_id,
            source_type="order",
            source_id=source_id,
            refund_id=data.external_id,
            order_total_fen=order.paid_fen,
            refund_amount_fen=refund_fen,
        )
        clawed, changed = (r.points_clawed, r.growth_clawed, r.to_debt), r.tier_changed_to
    if points_back:
        flows.earn(
            session,
            ctx,
            order.member_id,
            points=points_back,
            source_type="order_return",
            source_id=f"{source_id}:{data.external_id}"[:64],
            reason=f"points payment returned for order {order.external_id}",
            pending_days=0,
            restores_id=order.spend_posting_id,
        )
    record = OrderReturn(
        order_id=order.id,
        member_id=order.member_id,
        external_id=data.external_id,
        returned_at=data.returned_at.astimezone(UTC),
        refund_fen=refund_fen,
        points_returned=points_back,
        points_clawed=clawed[0],
        growth_clawed=clawed[1],
        to_debt=clawed[2],
        content_hash=digest,
        created_at=ctx.now,
    )
    session.add(record)
    session.flush()
    session.add_all(
        ReturnLine(
            return_id=record.id,
            line_no=p.line_no,
            quantity=p.quantity,
            refund_fen=p.refund_fen,
            points_returned=p.points,
        )
        for p in parts
    )
    order.refunded_fen += refund_fen
    back = all(ln.returned_quantity == ln.quantity for ln in order.lines)
    order.status = "returned" if back else "partially_returned"
    session.flush()
    _restore_coupons(session, ctx, order)
    webhooks.emit(
        session,
        "order.returned",
        {
            "member_no": member_no,
            "source": order.source,
            "external_id": order.external_id,
            "return_id": data.external_id,
            "refund_fen": refund_fen,
            "points_returned": points_back,
            "points_clawed_back": clawed[0],
            "growth_clawed_back": clawed[1],
            "to_debt": clawed[2],
        },
        ctx.now,
    )
    return record, changed


def _restore_coupons(session, ctx, order):
    rows = session.execute(
        select(Coupon, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.order_id == order.id, Coupon.status == "redeemed")
        .order_by(Coupon.id)
    ).all()
    by_no = {ln.line_no: ln for ln in order.lines}
    restored = []
    for coupon, template in rows:
        lines = [by_no[int(no)] for no in (coupon.allocation or {}) if int(no) in by_no]
        if not all(ln.returned_quantity == ln.quantity for ln in lines):
            continue
        if not coupon_settings(session).restore_on_return or coupon.valid_until <= ctx.now:
            continue
        coupon.status, coupon.order_id, coupon.redeemed_at = "issued", None, None
        coupon.discount_fen, coupon.allocation = 0, None
        restored.append((coupon, template))
    session.flush()
    for c, _ in restored:
        session.add(
            CouponHistory(
                coupon_id=c.id,
                status="issued",
                event="restored",
                order_id=order.id,
                at=ctx.now,
                note="order returned",
            )
        )
    session.flush()
    webhook_events.emit_many(
        session,
        [
            webhook_events.NewEvent(
                "coupon.restored",
                {"code": c.code, "template": t, "order_id": order.id},
                c.member_id,
            )
            for c, t in restored
        ],
        ctx.now,
    )
    audit.record_many(
        session,
        ctx.actor,
        [
            ("coupon.restore", "coupon", c.code, {"order_id": order.id}, ctx.now)
            for c, _ in restored
        ],
    )


def _more(database: Any, member_no: str, tag: str) -> dict[str, Any]:
    """What ``_snapshot`` leaves out: returns, holds, ledger refunds and coupons."""
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        orders = list(s.scalars(select(Order.id).where(Order.member_id == mid)))
        ret_ids = list(s.scalars(select(OrderReturn.id).where(OrderReturn.member_id == mid)))
        coupon_ids = list(s.scalars(select(Coupon.id).where(Coupon.member_id == mid)))
        coupons = _rows(s, Coupon, Coupon.member_id == mid)
        for c in coupons:
            for k in ("code", "template_id", "issue_key", "batch_ref"):
                c.pop(k, None)
        snap = {
            "returns": _rows(s, OrderReturn, OrderReturn.member_id == mid),
            "return_lines": _rows(s, ReturnLine, ReturnLine.return_id.in_(ret_ids)),
            "holds": _rows(s, PointsHold, PointsHold.member_id == mid),
            "refunds": _rows(s, PointsRefund, PointsRefund.member_id == mid),
            "coupons": coupons,
            "coupon_history": _rows(s, CouponHistory, CouponHistory.coupon_id.in_(coupon_ids)),
        }
        assert orders
    return _untag(snap, f"{tag}-")


IDS = {"restores_id", "reverses_id", "coupon_id", "return_id"}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for snap in (a, b):
        for p in snap["postings"]:  # keys made of ids or random
            if p["kind"] in ("repay", "release", "expire"):
                p["idempotency_key"] = p["idempotency_key"].split(":")[0]
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for x, y in zip(a[key], b[key], strict=True):
            # ids of the twin's own rows differ
            diff = {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k) and k not in IDS}
            assert not diff, (key, diff)


def _strip(snap: dict[str, Any]) -> dict[str, Any]:
    for e in snap["events"]:
        for k in ("code", "order_id", "member_no"):
            e["payload"].pop(k, None)
    return snap


@pytest.fixture
def twins(client, shop, make_member, auth_headers, monkeypatch):
    """Runs each step for the planned member, then for its twin through the flows."""
    planned, general = make_member(), make_member()

    def both(step):
        out = step(planned, "P")
        with monkeypatch.context() as m:
            m.setattr(returns, "_apply", _by_flows)
            out2 = step(general, "G")
        assert _untag(out, "P-") == _untag(out2, "G-")
        return out

    return planned, general, both


RET = {"returned_at": "2026-03-01T12:00:00+08:00"}


def _return(client, h, ext, rid, lines):
    r = client.post(
        f"/api/v1/orders/{ext}/returns",
        json={
            **RET,
            "external_id": rid,
            "lines": [{"line_no": n, "quantity": q} for n, q in lines],
        },
        headers=h,
    )
    return [r.status_code, {k: v for k, v in r.json().items() if k not in ("id", "order")}]


def test_a_coupon_paid_order_returned_by_a_member_in_debt(
    client, shop, auth_headers, database, twins
):
    planned, general, both = twins
    admin = auth_headers("admin")
    put_template(client, shop, "T200", THRESHOLD)

    def history(no, tag):
        code = issue(client, shop, "T200", no, ref=f"{tag}-B")["codes"][no]
        r = client.post(
            f"/api/v1/members/{no}/points/earn",
            json={"points": 1_000, "source_type": "mall", "source_id": f"{tag}-grant"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        body = basket(no, ("BEA-1", 2), ("FRE-1", 1), coupon_codes=[code], points_to_use=500)
        q, r = commit(client, shop, body, ext=f"{tag}-C")
        assert r.status_code == 201, r.text
        # the member spends everything left: the return's clawback becomes debt
        left = client.get(f"/api/v1/members/{no}/points", headers=admin).json()
        spend = left["balance"]["available"] if "balance" in left else left["available"]
        r = client.post(
            f"/api/v1/members/{no}/points/spend",
            json={"points": spend, "source_type": "mall", "source_id": f"{tag}-all"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        return q["points_earned"], q["coupon_discount_fen"]

    earned, discount = both(history)
    assert earned > 0 and discount == 3_000
    # a partial return: clawback to debt, the points given back repay it
    both(lambda no, tag: _return(client, shop, f"checkout/{tag}-C", "R-1", [(1, 1)]))
    # the rest: the coupon comes back to the wallet
    both(lambda no, tag: _return(client, shop, f"checkout/{tag}-C", "R-2", [(1, 1), (2, 1)]))
    a = _strip(_snapshot(database, planned, "P")) | _more(database, planned, "P")
    b = _strip(_snapshot(database, general, "G")) | _more(database, general, "G")
    assert a["account"][0]["debt"] > 0 and any(p["kind"] == "repay" for p in a["postings"])
    assert [c["status"] for c in a["coupons"]] == ["issued"]
    _same(a, b)


def test_returns_of_held_points_and_of_a_member_with_lots_due(
    client, auth_headers, database, twins, clock
):
    planned, general, both = twins
    admin = auth_headers("admin")
    current = client.get("/api/v1/points/settings", headers=admin).json()
    r = client.put(
        "/api/v1/points/settings",
        json={**current, "default_pending_days": 7, "expiry": {"kind": "days_after", "n": 30}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    h = {"shop": auth_headers("operator")}
    from tests.factories import order_body

    def order(no, tag, n):
        r = client.post("/api/v1/orders", json=order_body(no, ext=f"{tag}-{n}"), headers=h["shop"])
        assert r.status_code == 201, r.text
        return r.json()["points_earned"]

    both(lambda no, tag: order(no, tag, 1))
    # the points are held for 7 days: the return takes them from the hold
    both(lambda no, tag: _return(client, h["shop"], f"pos/{tag}-1", "R-1", [(2, 1)]))
    # 8 days on: the hold is due (released first), then the return claws from the balance
    clock.advance(timedelta(days=8))
    h["shop"] = auth_headers("operator", fresh=True)
    both(lambda no, tag: order(no, tag, 2))
    both(lambda no, tag: _return(client, h["shop"], f"pos/{tag}-1", "R-2", [(1, 1)]))
    # 40 days on: the released lot is due to expire (expired first); order 2's hold is due
    clock.advance(timedelta(days=40))
    h["shop"] = auth_headers("operator", fresh=True)
    both(lambda no, tag: _return(client, h["shop"], f"pos/{tag}-2", "R-3", [(1, 1)]))
    a = _snapshot(database, planned, "P") | _more(database, planned, "P")
    b = _snapshot(database, general, "G") | _more(database, general, "G")
    kinds = [p["kind"] for p in a["postings"]]
    assert {"release", "expire", "clawback"} <= set(kinds), kinds
    # order 1's hold, partly clawed back, then released; order 2's released by the last return
    assert [h["status"] for h in a["holds"]] == ["released", "released"]
    assert a["holds"][0]["amount"] < a["holds"][0]["original_amount"]
    _same(a, b)
