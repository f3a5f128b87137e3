"""Coupons under real concurrency on PostgreSQL: a limited template's last coupons claimed by
200 threads are issued exactly to its quantity; one coupon on two orders at once is used once."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, text

from patron.app import create_app
from patron.auth.principal import Principal
from patron.checks import run_all
from patron.coupons import service
from patron.coupons.domain import TemplateRules
from patron.coupons.models import Coupon, CouponTemplate
from patron.errors import Conflict
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders.models import Order
from tests.conftest import make_settings
from tests.orders.test_orders_concurrency_pg import _admin, _setup

pytestmark = pytest.mark.postgres_only
SH = ZoneInfo("Asia/Shanghai")
THREADS = 200
QUANTITY = 37


def _run(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # the test counts outcomes
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _template(db, clock, quantity, code="LAST"):
    with db.unit_of_work() as s:
        service.put_template(
            s,
            Ctx(Principal.system("t"), clock.now(), SH),
            code,
            name=code,
            rules=TemplateRules(kind="amount_off", amount_fen=500, valid_days=10),
            total_quantity=quantity,
            per_member_limit=1,
            points_price=0,
            status="active",
        )


def _members(db, clock, n):
    """Bare member rows (issuing needs no contact data)."""
    now = clock.now()
    with db.unit_of_work() as s:
        return list(
            s.scalars(
                insert(Member).returning(Member.id),
                [
                    {
                        "member_no": f"9{i:09d}",
                        "phone_enc": b"x",
                        "phone_index": f"idx-{i}",
                        "member_type": "regular",
                        "status": "active",
                        "registration_channel": "web",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(n)
                ],
            )
        )


def test_200_threads_claiming_the_last_coupons_get_exactly_the_quantity(pg_database, clock):
    _template(pg_database, clock, QUANTITY)
    ids = _members(pg_database, clock, THREADS)

    def claim(i):
        with pg_database.unit_of_work() as s:
            ctx = Ctx(Principal.system("t"), clock.now(), SH)
            return service.issue(s, ctx, "LAST", ids[i], reason="manual", ref="drop")[1]

    results = _run(THREADS, claim)
    issued = [r for r in results if r is False]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(issued) == QUANTITY
    assert len(refused) == THREADS - QUANTITY
    assert {e.code for e in refused} == {"coupon_sold_out"}
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Coupon)) == QUANTITY
        assert s.scalar(select(CouponTemplate.issued_count)) == QUANTITY
        assert run_all(s, now=clock.now()) == []


def test_the_same_issue_sent_by_many_threads_is_issued_once(pg_database, clock):
    _template(pg_database, clock, None, code="ONE")
    (mid,) = _members(pg_database, clock, 1)

    def claim(_i):
        with pg_database.unit_of_work() as s:
            ctx = Ctx(Principal.system("t"), clock.now(), SH)
            return service.issue(s, ctx, "ONE", mid, reason="welcome")[0].code

    codes = _run(30, claim)
    assert len(set(codes)) == 1 and isinstance(codes[0], str)


def test_one_coupon_on_two_orders_at_once_is_used_once(pg_database, clock):
    app = create_app(make_settings(pg_database), pg_database, clock)
    h = _admin(pg_database, app, clock)
    no = _setup(app, h)
    _template(pg_database, clock, None, code="FIVE")
    with pg_database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        ctx = Ctx(Principal.system("t"), clock.now(), SH)
        code = service.issue(s, ctx, "FIVE", mid, reason="manual", ref="x")[0].code
    body = {
        "member_no": no,
        "store_code": "SH001",
        "channel": "store",
        "lines": [{"sku": "BEA-1", "quantity": 1}],
        "coupon_codes": [code],
    }
    with TestClient(app) as c:
        q = c.post("/api/v1/checkout/quote", json=body, headers=h).json()
    assert q["coupon_discount_fen"] == 500

    def buy(i):
        with TestClient(app) as c:
            r = c.post(
                "/api/v1/checkout/commit",
                json={
                    **body,
                    "external_id": f"C-{i}",
                    "expected_total_fen": q["total_fen"],
                    "expected_points_earned": q["points_earned"],
                },
                headers=h,
            )
            return r.status_code, r.json()

    results = _run(8, buy)
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1, results
    assert all(s == 409 for s in statuses if s != 201)
    assert {b["error"]["code"] for s, b in results if s == 409} <= {
        "coupon_used",
        "coupon_already_used",
    }
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert s.scalar(select(Coupon.status)) == "redeemed"
        assert run_all(s, now=clock.now()) == []


def _wait_until_blocked(db, timeout_s=20.0):
    """Until another backend waits on a row lock (the exchange thread queued behind us)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.engine.connect() as c:
            n = c.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar()
        if n:
            return
        time.sleep(0.05)
    raise AssertionError("the exchange never waited for the member's lock")


def test_an_exchange_waits_for_the_member_before_it_locks_the_template(pg_database, clock):
    """An order holding the member that then issues a reward coupon of the same template
    (member → template) must not deadlock with an exchange of that template by the member:
    the exchange takes the member first, so it holds nothing the order needs."""
    from patron.ledger import service as ledger

    with pg_database.unit_of_work() as s:
        service.put_template(
            s,
            Ctx(Principal.system("t"), clock.now(), SH),
            "SWAP",
            name="SWAP",
            rules=TemplateRules(kind="amount_off", amount_fen=500, valid_days=10),
            total_quantity=None,
            per_member_limit=5,
            points_price=100,
            status="active",
        )
    (mid,) = _members(pg_database, clock, 1)
    with pg_database.unit_of_work() as s:
        ctx = Ctx(Principal.system("t"), clock.now(), SH)
        ledger.adjust_points(s, ctx, mid, 500, key="adjust:seed", reason="seed")

    order_side = pg_database.session()
    try:
        ctx = Ctx(Principal.system("t"), clock.now(), SH)
        ledger.begin(order_side, ctx, mid)  # the order holds the member's ledger

        def swap():
            with pg_database.unit_of_work() as s:
                c = Ctx(Principal.system("t"), clock.now(), SH)
                return service.exchange(s, c, mid, "SWAP", "r1")[1]

        out: list = []
        t = threading.Thread(target=lambda: out.append(_catch(swap)))
        t.start()
        _wait_until_blocked(pg_database)
        order_side.execute(text("SET LOCAL lock_timeout = '10s'"))
        # The order now issues its reward coupon: the template must be free.
        service.get_template(order_side, "SWAP", lock=True)
        order_side.commit()
    finally:
        order_side.close()
    t.join()
    assert out == [False]
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Coupon)) == 1
        assert run_all(s, now=clock.now()) == []


def _catch(fn):
    try:
        return fn()
    except Exception as exc:  # reported by the assertion
        return exc
