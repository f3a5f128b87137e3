"""Paid portal posts answer with a redirect (a refresh never draws again), the flash sale's
waiting page, and operators changing and closing flash sales and lottery pools."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from patron import checks
from patron.audit.models import AuditRecord
from patron.errors import PatronError
from patron.ledger.models import PointsPosting as Posting
from patron.mall import redemptions
from patron.mall import service as mall
from patron.mall.models import FlashSale, LotteryDraw, LotteryPool, Redemption
from patron.members import service as members
from tests.mall.helpers import ACTOR, SH, grant, setup_gift, store
from tests.web.test_desk_pages import _hidden
from tests.web.test_mall_pages import _count, _operator
from tests.web.test_mall_play_pages import _pool, _token
from tests.web.test_portal_pages import portal_sign_in

BONUS = {"name": "Bonus", "kind": "points", "award_points": 10, "ppm": 1_000_000}


def test_a_draw_redirects_to_its_result_and_a_refresh_draws_nothing(
    client, app, database, clock, auth_headers, make_member
):
    _pool(client, auth_headers("operator"), "WIN", [{**BONUS, "is_fallback": True}])
    no = make_member(phone="13900005555")
    grant(database, clock, no, 100)
    portal_sign_in(client, app, "13900005555")
    token = _token(client, "/portal/mall/lottery")
    r = client.post("/portal/mall/lottery/WIN", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"]
    assert url.startswith("/portal/mall/lottery/draws/")
    draws, postings = _count(database, LotteryDraw), _count(database, Posting)
    for _ in range(2):  # reloading the result page
        page = client.get(url)
        assert page.status_code == 200 and 'data-prize="Bonus"' in page.text
        assert 'data-available="70"' in page.text  # 100 - 40 + 10
    assert draws == 1
    assert (_count(database, LotteryDraw), _count(database, Posting)) == (draws, postings)
    # another member's draw is not there
    client.cookies.clear()
    make_member(phone="13900005556")
    portal_sign_in(client, app, "13900005556")
    assert client.get(url).status_code == 404
    assert client.get("/portal/mall/lottery/draws/999999").status_code == 404


def test_the_flash_waiting_page_opens_at_the_start(
    client, app, database, clock, auth_headers, make_member
):
    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, "MUG", stock={"east": 5})
    start = clock.now() + timedelta(seconds=90)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    sale = client.post(
        "/api/v1/mall/flash-sales",
        json={"gift_code": "MUG", "points": 50, "quantity": 2, **window},
        headers=op,
    ).json()
    no = make_member(phone="13900004444")
    grant(database, clock, no, 100)
    portal_sign_in(client, app, "13900004444")
    page = client.get(f"/portal/mall/flash/{sale['id']}").text
    assert 'data-state="waiting"' in page
    assert f'data-server-now="{int(clock.now().timestamp() * 1000)}"' in page
    assert f'data-starts="{int(start.timestamp() * 1000)}"' in page
    assert "data-flash-redeem disabled" in page and "/static/mall_flash.js" in page
    # the button is only a convenience: the server refuses a post before the start
    form = {"sale_id": sale["id"], "gift_code": "MUG", "csrf_token": _hidden(page, "csrf_token")}
    early = client.post("/portal/mall/flash", data=form)
    assert early.status_code == 409 and "限时抢兑尚未开始。" in early.text
    assert _count(database, Redemption) == 0
    clock.set(start)
    page = client.get(f"/portal/mall/flash/{sale['id']}").text
    assert 'data-state="open"' in page and "data-flash-redeem disabled" not in page
    ok = client.post("/portal/mall/flash", data=form, follow_redirects=False)
    assert ok.status_code == 303 and "/portal/mall/codes/" in ok.headers["location"]
    assert client.get("/portal/mall/flash/999999").status_code == 404


def _sale(client, op, clock, quantity: int = 3) -> tuple[dict, object]:
    start = clock.now() + timedelta(hours=1)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}
    r = client.post(
        "/api/v1/mall/flash-sales",
        json={"gift_code": "MUG", "points": 50, "quantity": quantity, **window},
        headers=op,
    )
    assert r.status_code == 201, r.text
    return r.json(), start


def test_operators_change_and_close_a_flash_sale(
    client, app, database, clock, auth_headers, make_member
):
    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, "MUG", stock={"east": 9})
    sale, _start = _sale(client, op, clock)
    member_no = make_member(phone="13900003333")
    token = _operator(client, database, clock)
    edit = client.get(f"/console/mall/promotions?flash={sale['id']}")
    assert f'action="/console/mall/flash-sales/{sale["id"]}"' in edit.text
    assert 'value="50"' in edit.text  # the form shows the sale as it is
    url = f"/console/mall/flash-sales/{sale['id']}"
    local = {"starts_at": "2026-03-01T10:30", "ends_at": "2026-03-01T12:00"}
    form = {"csrf_token": token, "points": "40", "quantity": "2", "per_member_limit": "1"}
    ok = client.post(url, data={**form, **local}, follow_redirects=False)
    assert ok.status_code == 303
    with database.unit_of_work() as s:
        row = s.get(FlashSale, sale["id"])
        assert (row.points, row.quantity) == (40, 2)
        assert row.starts_at.isoformat() == "2026-03-01T02:30:00+00:00"  # Shanghai time
    # a member takes one unit once it opens
    clock.set(row.starts_at)
    grant(database, clock, member_no, 100)
    _redeem(database, clock, member_no, sale["id"])
    audits = _count(database, AuditRecord)
    for bad, words in (
        ({"quantity": "0"}, "Check the fields"),
        ({"points": "30"}, "its points and start can no longer change"),
    ):
        r = client.post(url, data={**form, **local, **bad})
        assert r.status_code in (409, 422) and 'data-error-for="form"' in r.text, bad
        assert words in r.text
    with database.unit_of_work() as s:  # nothing written by the refusals
        assert (s.get(FlashSale, sale["id"]).points, s.get(FlashSale, sale["id"]).quantity) == (
            40,
            2,
        )
    assert _count(database, AuditRecord) == audits
    # the quantity may not go below the units granted (the service's own refusal)
    r = client.post(url, data={**form, **local, "points": "40", "quantity": "0"})
    assert r.status_code == 422
    closed = client.post(f"{url}/close", data={"csrf_token": token}, follow_redirects=False)
    assert closed.status_code == 303
    page = client.get("/console/mall/promotions").text
    assert f'data-flash="{sale["id"]}"' in page and 'data-state="closed"' in page
    with pytest.raises(PatronError) as refused:
        _redeem(database, clock, member_no, sale["id"])
    assert refused.value.code == "flash_ended"
    again = client.post(f"{url}/close", data={"csrf_token": token})
    assert again.status_code == 409 and 'data-error-for="form"' in again.text
    with database.unit_of_work() as s:
        actions = set(s.scalars(select(AuditRecord.action)))
        assert {"mall.flash_sale_update", "mall.flash_sale_close"} <= actions
        assert checks.run_all(s) == []


def test_quantity_below_granted_is_refused(client, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, "MUG", stock={"east": 9})
    sale, start = _sale(client, op, clock, quantity=3)
    numbers = [make_member(phone=phone) for phone in ("13900002221", "13900002222")]
    clock.set(start)
    for member_no in numbers:
        grant(database, clock, member_no, 100)
        _redeem(database, clock, member_no, sale["id"])
    token = _operator(client, database, clock)
    local = {
        "starts_at": start.astimezone(_sh()).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=2)).astimezone(_sh()).strftime("%Y-%m-%dT%H:%M"),
    }
    form = {"csrf_token": token, "points": "50", "quantity": "1", "per_member_limit": "1"}
    r = client.post(f"/console/mall/flash-sales/{sale['id']}", data={**form, **local})
    assert r.status_code == 409 and "cannot be lower" in r.text
    ok = client.post(
        f"/console/mall/flash-sales/{sale['id']}",
        data={**form, **local, "quantity": "2"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    with database.unit_of_work() as s:
        assert s.get(FlashSale, sale["id"]).quantity == 2
        assert checks.run_all(s) == []


def test_operators_change_and_close_a_lottery_pool(
    client, app, database, clock, auth_headers, make_member
):
    op = auth_headers("operator")
    thanks = {"name": "Thanks", "kind": "none", "ppm": 875_000, "is_fallback": True}
    _pool(client, op, "WHEEL", [thanks, {**BONUS, "ppm": 125_000, "stock": 5}], cost=10)
    no = make_member(phone="13900001111")
    grant(database, clock, no, 100)
    r = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert r.status_code == 201 and r.json()["pool_version"] == 1
    token = _operator(client, database, clock)
    edit = client.get("/console/mall/promotions?pool=WHEEL").text
    assert 'value="WHEEL" readonly' in edit and 'value="87.5"' in edit and 'value="12.5"' in edit
    form = {
        "csrf_token": token,
        "code": "WHEEL",
        "name": "Wheel",
        "cost_points": "10",
        "daily_limit": "3",
        "prize_name": ["Thanks", "Bonus"],
        "prize_kind": ["none", "points"],
        "prize_points": ["", "10"],
        "prize_odds": ["50", "50"],
        "prize_stock": ["", "5"],
        "fallback": "0",
    }
    closed = client.post(
        "/console/mall/lotteries/WHEEL/close", data={"csrf_token": token}, follow_redirects=False
    )
    assert closed.status_code == 303
    refused = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "lottery_closed"
    saved = client.post("/console/mall/lotteries", data=form, follow_redirects=False)
    assert saved.status_code == 303
    with database.unit_of_work() as s:
        pool = s.scalar(select(LotteryPool).where(LotteryPool.code == "WHEEL"))
        assert (pool.version, pool.is_active) == (2, False)  # a change keeps it closed
        assert [d.pool_version for d in s.scalars(select(LotteryDraw))] == [1]
    page = client.get("/console/mall/promotions").text
    assert 'data-pool="WHEEL" data-version="2"' in page and 'data-open-pool="WHEEL"' in page
    opened = client.post(
        "/console/mall/lotteries/WHEEL/open", data={"csrf_token": token}, follow_redirects=False
    )
    assert opened.status_code == 303
    r = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert r.status_code == 201 and r.json()["pool_version"] == 2
    assert (
        client.post("/console/mall/lotteries/NOPE/close", data={"csrf_token": token}).status_code
        == 404
    )
    with database.unit_of_work() as s:
        actions = set(s.scalars(select(AuditRecord.action)))
        assert {"mall.lottery_close", "mall.lottery_open"} <= actions


def _redeem(database, clock, member_no: str, sale_id: int) -> None:
    with database.unit_of_work() as s:
        member = members.get_member(s, member_no)
        req = redemptions.RedeemRequest(gift_code="MUG", quantity=1, flash_sale_id=sale_id)
        redemptions.redeem(s, mall.make_ctx(s, ACTOR, clock.now(), SH), member, req)


def _sh():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")
