"""Seeded earning fraud for the demo, after its history: each kind of abuse the earning rules
of risk review look for (``risk.earning``), at the default limits, within the last day, so
the hourly pass opens reviews for them. The members are tagged ``demo-fraud`` so the rules'
precision can be read off the demo (docs/risk.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.ledger import flows
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberCreate
from patron.orders import returns
from patron.orders import service as orders
from patron.orders.models import Order
from patron.orders.schemas import OrderIn, ReturnIn

TAG: Final = "demo-fraud"
STORE: Final = "SH001"


def _sku(db: Database) -> tuple[str, int]:
    with db.unit_of_work() as s:
        products = catalog.list_products(s, limit=1000)[0]
    if not products:
        raise RuntimeError("the demo catalogue is not loaded")
    best = max(products, key=lambda p: p.price_fen)
    return best.sku, int(best.price_fen)


def _join(db: Database, cipher: FieldCipher, phone: str, at: datetime, tz: ZoneInfo) -> str:
    actor = Principal.system("demo")
    with db.unit_of_work() as s:
        found = members.find_by_phone(s, cipher, phone)
        if found is not None:
            return found.member_no
        data = MemberCreate(phone=phone, channel="web", name="Demo Fraud")
        m = members.register(s, actor, cipher, data, now=at, tz=tz)
        members.add_tag(s, actor, m.member_no, TAG, now=at)
        return m.member_no


def _order(
    db: Database, no: str, ext: str, at: datetime, tz: ZoneInfo, sku: tuple[str, int], qty: int
) -> int:
    total = sku[1] * qty
    body = OrderIn.model_validate(
        {
            "source": "demo",
            "external_id": ext,
            "member_no": no,
            "channel": "store",
            "store_code": STORE,
            "ordered_at": at,
            "lines": [{"line_no": 1, "sku": sku[0], "quantity": qty, "unit_price_fen": sku[1]}],
            "payments": [{"method": "wechat", "amount_fen": total}],
        }
    )
    with db.unit_of_work() as s:
        order, _ = orders.ingest_order(s, Principal.system("demo"), body, now=at, tz=tz)
        return int(order.points_earned)


def seed_earning_fraud(
    db: Database, cipher: FieldCipher, *, now: datetime, tz: ZoneInfo
) -> dict[str, int]:
    """The seeded frauds (idempotent: a second run finds its orders and does nothing)."""
    with db.unit_of_work() as s:
        if s.scalar(select(Order.id).where(Order.external_id == "FRAUD-V-0")) is not None:
            return {"members": 0}
    sku = _sku(db)
    day = now - timedelta(hours=20)
    seeded: set[str] = set()
    # 1. a member ordering seven times within the hour
    fast = _join(db, cipher, "13600000001", now - timedelta(days=90), tz)
    for i in range(7):
        _order(db, fast, f"FRAUD-V-{i}", day + timedelta(minutes=8 * i), tz, sku, 1)
    seeded.add(fast)
    # 2. earn and return: big baskets, returned until 3,000 points have come back
    cycler = _join(db, cipher, "13600000002", now - timedelta(days=90), tz)
    earned = 0
    for i in range(10):
        at = day + timedelta(hours=1, minutes=10 * i)
        earned += _order(db, cycler, f"FRAUD-C-{i}", at, tz, sku, 5)
        with db.unit_of_work() as s:
            ctx = orders.make_ctx(s, Principal.system("demo"), at + timedelta(minutes=5), tz)
            back = ReturnIn(
                external_id=f"FRAUD-CR-{i}",
                returned_at=at + timedelta(minutes=5),
                lines=[{"line_no": 1, "quantity": 5}],
            )
            returns.record_return(s, ctx, "demo", f"FRAUD-C-{i}", back)
        if earned >= 3_000:
            break
    seeded.add(cycler)
    # 3. a new member earning 5,000 points on the day they join
    joined = day + timedelta(hours=3)
    newbie = _join(db, cipher, "13600000003", joined, tz)
    earned = 0
    for i in range(10):
        earned += _order(
            db, newbie, f"FRAUD-N-{i}", joined + timedelta(minutes=30 + i), tz, sku, 10
        )
        if earned >= 5_000:
            break
    seeded.add(newbie)
    # 4. twenty-one new members on one phone prefix, ordering at one till within two minutes
    burst = day + timedelta(hours=5)
    for n in range(21):
        no = _join(db, cipher, f"1360001{n:04d}", burst - timedelta(days=1), tz)
        _order(db, no, f"FRAUD-P-{n}", burst + timedelta(seconds=5 * n), tz, sku, 1)
        seeded.add(no)
    # 5. one staff member crediting three members by hand, 9,000 each over two days
    staff = Principal.system("demo desk")
    for n in range(3):
        no = _join(db, cipher, f"1360002{n:04d}", now - timedelta(days=60), tz)
        at = now - timedelta(days=2 - n // 2, hours=1)
        with db.unit_of_work() as s:
            mid = s.scalar(select(Member.id).where(Member.member_no == no))
            assert mid is not None
            ctx = orders.make_ctx(s, staff, at, tz)
            flows.request_adjustment(
                s, ctx, int(mid), ledger="points", amount=9_000, reason="goodwill"
            )
        seeded.add(no)
    return {"members": len(seeded)}
