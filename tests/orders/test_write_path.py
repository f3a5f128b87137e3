"""The planned write path and the general path (which settles the ledger first) write the same
rows: twin members get the same orders, one through each path, and their ledgers, orders,
tiers and audit records are compared."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patron.audit.models import AuditRecord
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsLot,
    PointsPosting,
)
from patron.members.models import Member
from patron.orders import plan
from patron.orders.models import Order, OrderLine, OrderPayment
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks.models import WebhookEvent
from tests.factories import order_body

SKIP = {"id", "member_id", "order_id", "posting_id", "lot_id", "earn_posting_id"}
SKIP |= {"spend_posting_id", "entity_id", "request_id", "actor_id", "version", "content_hash"}


def _rows(session: Any, model: Any, *where: Any) -> list[dict[str, Any]]:
    out = []
    for obj in session.scalars(select(model).where(*where).order_by(*model.__mapper__.primary_key)):
        row = {c.key: getattr(obj, c.key) for c in model.__mapper__.column_attrs}
        out.append({k: v for k, v in row.items() if k not in SKIP})
    return out


def _snapshot(database: Any, member_no: str, tag: str) -> dict[str, Any]:
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        order_ids = list(s.scalars(select(Order.id).where(Order.member_id == mid)))
        posting_ids = list(
            s.scalars(select(PointsPosting.id).where(PointsPosting.member_id == mid))
        )
        audits = _rows(
            s,
            AuditRecord,
            AuditRecord.entity_type == "member",
            AuditRecord.entity_id == str(mid),
            AuditRecord.action.like("points.%"),
        )
        for a in audits:
            a["after"] = {k: v for k, v in (a["after"] or {}).items() if k != "posting_id"}
            a.pop("at", None)
        evs = _rows(s, WebhookEvent, WebhookEvent.member_no == member_no)
        for e in evs:
            e["payload"] = {k: v for k, v in e["payload"].items() if k != "posting_id"}
            e.pop("member_no")
            e["payload"].pop("member_no", None)
        snap = {
            "orders": _rows(s, Order, Order.member_id == mid),
            "lines": _rows(s, OrderLine, OrderLine.order_id.in_(order_ids)),
            "payments": _rows(s, OrderPayment, OrderPayment.order_id.in_(order_ids)),
            "postings": _rows(s, PointsPosting, PointsPosting.member_id == mid),
            "lots": _rows(s, PointsLot, PointsLot.member_id == mid),
            "allocations": _rows(s, PointsAllocation, PointsAllocation.posting_id.in_(posting_ids)),
            "account": _rows(s, PointsAccount, PointsAccount.member_id == mid),
            "growth": _rows(s, GrowthPosting, GrowthPosting.member_id == mid),
            "growth_account": _rows(s, GrowthAccount, GrowthAccount.member_id == mid),
            "tier": _rows(s, MemberTier, MemberTier.member_id == mid),
            "tier_changes": _rows(s, TierChange, TierChange.member_id == mid),
            "audit": audits,
            "events": evs,
        }
    # external ids differ between the twins (they are unique per source)
    return _untag(snap, f"{tag}-")


def _untag(value: Any, tag: str) -> Any:
    if isinstance(value, str):
        return value.replace(tag, "X-")
    if isinstance(value, dict):
        return {k: _untag(v, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v, tag) for v in value]
    return value


def _history(client: Any, shop: dict[str, str], member_no: str, tag: str) -> list[int]:
    statuses = []
    big = [
        {"sku": "BEA-1", "quantity": 6, "unit_price_fen": 19900},
        {"sku": "FRE-1", "quantity": 2, "unit_price_fen": 1250, "discount_fen": 500},
    ]
    bodies = [
        # first purchase + welcome bonus; the growth lifts the member to silver
        order_body(
            member_no,
            ext=f"{tag}-1",
            lines=big,
            payments=[{"method": "cash", "amount_fen": 121400}],
        ),
        # paid partly with points
        order_body(
            member_no,
            ext=f"{tag}-2",
            payments=[
                {"method": "points", "amount_fen": 2000, "points": 2000},
                {"method": "card", "amount_fen": 19900},
            ],
        ),
        # a historical order recorded without earning
        order_body(member_no, ext=f"{tag}-3", earn=False),
    ]
    for body in bodies:
        statuses.append(client.post("/api/v1/orders", json=body, headers=shop).status_code)
    basket = {
        "member_no": member_no,
        "store_code": "SH001",
        "channel": "store",
        "lines": [{"sku": "BEA-1", "quantity": 1}, {"sku": "FRE-1", "quantity": 3}],
        "points_to_use": 500,
    }
    quote = client.post("/api/v1/checkout/quote", json=basket, headers=shop).json()
    commit = {
        **basket,
        "external_id": f"{tag}-4",
        "expected_total_fen": quote["total_fen"],
        "expected_points_earned": quote["points_earned"],
        "payment_method": "wechat",
    }
    statuses.append(client.post("/api/v1/checkout/commit", json=commit, headers=shop).status_code)
    return statuses


def test_planned_and_general_paths_write_the_same_rows(
    client, shop, make_member, database, monkeypatch
):
    planned, general = make_member(), make_member()
    assert _history(client, shop, planned, "P") == [201, 201, 201, 201]
    with monkeypatch.context() as m:
        m.setattr(plan, "needs_general_path", lambda _facts, _settings: True)
        assert _history(client, shop, general, "G") == [201, 201, 201, 201]
    a, b = _snapshot(database, planned, "P"), _snapshot(database, general, "G")
    assert a["tier"][0]["tier_code"] == "silver"
    assert len(a["postings"]) == 5  # three earnings, two points payments
    assert [e["event_type"] for e in a["events"]][:5] == [
        "points.earned",
        "growth.earned",
        "tier.changed",
        "order.recorded",
        "points.spent",
    ]
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for x, y in zip(a[key], b[key], strict=True):
            diff = {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}
            assert not diff, (key, diff)


def test_a_spend_the_balance_no_longer_covers_is_refused_by_the_writer(
    database, make_member, clock
):
    """A plan made on facts the balance no longer matches (here: points spent after the facts
    were read) is refused by the account's guard — on PostgreSQL inside the one statement that
    writes the plan — and the unit of work leaves nothing of it."""
    import pytest

    from patron.auth.principal import Principal
    from patron.ledger import flows
    from patron.ledger.domain import InsufficientPoints
    from patron.orders import service, writer
    from patron.orders.schemas import OrderIn

    no = make_member()
    actor = Principal.system("t")
    body = OrderIn.model_validate(
        order_body(
            no,
            ext="STALE",
            payments=[
                {"method": "points", "amount_fen": 2000, "points": 2000},
                {"method": "card", "amount_fen": 19900},
            ],
        )
    )
    tz = service.ZoneInfo("Asia/Shanghai")
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        ctx = service.make_ctx(s, actor, clock.now(), tz)
        flows.earn(s, ctx, mid, points=3000, source_type="test", source_id="grant")

    def attempt() -> None:
        with database.unit_of_work() as s:
            ctx = service.make_ctx(s, actor, clock.now(), tz)
            member = s.get(Member, mid)
            data = plan.OrderInput(
                source=body.source,
                external_id=body.external_id,
                channel="store",
                store_code="SH001",
                ordered_at=clock.now(),
                lines=(
                    plan.PlanLine(1, "BEA-1", "beauty", 1, 19900, 0, 19900, 1800, 1800, 18100),
                    plan.PlanLine(2, "FRE-1", "fresh", 2, 1000, 0, 2000, 200, 200, 1800),
                ),
                payments=(("points", 2000, 2000), ("card", 19900, 0)),
                points_used=2000,
                earn=False,
                digest="x",
            )
            settings, facts = service.gather(s, ctx, member, data)
            lots = service.facts.open_lots(s, mid)
            planned = plan.plan_order(
                data, facts, settings, earning=None, open_lots=lots, actor="t", now=ctx.now, tz=tz
            )
            # the balance moves after the facts were read (under the same lock, as a bug would)
            flows.spend(s, ctx, mid, points=1500, source_type="test", source_id="elsewhere")
            writer.write_plans(s, actor, [planned])

    # the lot's guard or the account's refuses it (lots are checked first)
    with pytest.raises((InsufficientPoints, RuntimeError)):
        attempt()
    with database.unit_of_work() as s:
        assert s.scalar(select(Order.id).where(Order.external_id == "STALE")) is None
        assert s.scalar(select(PointsAccount.available).where(PointsAccount.member_id == mid)) == (
            3000
        )
