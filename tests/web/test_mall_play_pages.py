"""Mall lottery and flash-sale pages with the test client: a member draws and redeems a flash
unit in the portal; refusals (too few points, sold out, bad odds) answer 4xx and write nothing;
the console lists and creates flash sales and pools."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from patron import checks
from patron.ledger.models import PointsPosting as Posting
from patron.mall.models import FlashSale, LotteryDraw, LotteryPool, Redemption
from tests.mall.helpers import grant, setup_gift, store
from tests.web.test_desk_pages import _hidden
from tests.web.test_mall_pages import _count, _operator
from tests.web.test_portal_pages import portal_sign_in


def _pool(client, op, code: str, prizes: list[dict], cost: int = 40) -> None:
    body = {"code": code, "name": f"Pool {code}", "cost_points": cost, "daily_limit": 2}
    r = client.put(f"/api/v1/mall/lotteries/{code}", json={**body, "prizes": prizes}, headers=op)
    assert r.status_code == 200, r.text


def _token(client, path: str) -> str:
    return _hidden(client.get(path).text, "csrf_token")


def test_portal_draw_fallback_and_refusal(client, app, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    win = {"name": "Bonus", "kind": "points", "award_points": 100, "ppm": 1_000_000}
    _pool(client, op, "WIN", [{**win, "is_fallback": True}])
    gone = {"name": "Kettle", "kind": "item", "ppm": 1_000_000, "stock": 0}
    thanks = {"name": "Thanks", "kind": "none", "ppm": 0, "is_fallback": True}
    _pool(client, op, "GONE", [gone, thanks])
    no = make_member(phone="13900008888")
    grant(database, clock, no, 50)
    portal_sign_in(client, app, "13900008888")
    page = client.get("/portal/mall/lottery")
    assert 'data-pool="WIN"' in page.text and 'data-ppm="1000000"' in page.text
    assert 'data-left="2"' in page.text
    token = _hidden(page.text, "csrf_token")
    won = client.post("/portal/mall/lottery/WIN", data={"csrf_token": token})
    assert won.status_code == 200 and 'data-prize="Bonus"' in won.text
    assert 'data-available="110"' in won.text  # 50 - 40 + 100
    fell = client.post("/portal/mall/lottery/GONE", data={"csrf_token": token})
    assert 'data-prize="Thanks"' in fell.text and 'data-fell-back="yes"' in fell.text
    assert 'data-available="70"' in fell.text
    # 70 points: one more draw of GONE, then 30 left, too few for another
    client.post("/portal/mall/lottery/GONE", data={"csrf_token": token})
    draws, postings = _count(database, LotteryDraw), _count(database, Posting)
    over = client.post("/portal/mall/lottery/GONE", data={"csrf_token": token})
    assert over.status_code == 409 and 'data-error-for="form"' in over.text  # daily limit
    poor = client.post("/portal/mall/lottery/WIN", data={"csrf_token": token})
    assert poor.status_code == 409 and "积分不足" in poor.text
    assert (_count(database, LotteryDraw), _count(database, Posting)) == (draws, postings)
    assert client.post("/portal/mall/lottery/NOPE", data={"csrf_token": token}).status_code == 404
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_portal_flash_redeem_and_sold_out(client, app, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, "MUG", stock={"east": 5})
    start = clock.now() + timedelta(minutes=5)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    sale = client.post(
        "/api/v1/mall/flash-sales",
        json={"gift_code": "MUG", "points": 50, "quantity": 1, **window},
        headers=op,
    ).json()
    first, second = make_member(phone="13900007777"), make_member(phone="13900006666")
    grant(database, clock, first, 100)
    grant(database, clock, second, 100)
    portal_sign_in(client, app, "13900007777")
    page = client.get("/portal/mall/flash")
    assert f'data-flash="{sale["id"]}"' in page.text and 'data-state="upcoming"' in page.text
    token = _token(client, "/portal/mall/gifts/MUG")  # no form while nothing is open
    url, form = "/portal/mall/flash", {"sale_id": sale["id"], "gift_code": "MUG"}
    early = client.post(url, data={**form, "csrf_token": token})
    assert early.status_code == 409 and _count(database, Redemption) == 0
    clock.set(start)
    assert 'data-state="open"' in client.get("/portal/mall/flash").text
    ok = client.post(url, data={**form, "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and "/portal/mall/codes/" in ok.headers["location"]
    client.cookies.clear()
    portal_sign_in(client, app, "13900006666")
    page = client.get("/portal/mall/flash")
    assert 'data-state="sold-out"' in page.text and 'data-remaining="0"' in page.text
    postings = _count(database, Posting)
    lost = client.post(url, data={**form, "csrf_token": _token(client, "/portal/mall/gifts/MUG")})
    assert lost.status_code == 409 and "已抢完" in lost.text  # told at once, in words
    assert _count(database, Redemption) == 1 and _count(database, Posting) == postings
    pts = client.get(f"/api/v1/members/{second}/points", headers=op).json()["available"]
    assert pts == 100
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_console_flash_sales_and_pools(client, database, clock, auth_headers):
    setup_gift(client, auth_headers("operator"), "MUG")
    token = _operator(client, database, clock)
    assert client.get("/console/mall/promotions").status_code == 200
    good = {"csrf_token": token, "gift_code": "MUG", "points": "50", "quantity": "10"}
    ok = client.post(
        "/console/mall/flash-sales",
        data={**good, "starts_at": "2026-12-12T10:00", "ends_at": "2026-12-12T11:00"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    for bad in (
        {"starts_at": "2026-12-12T10:00", "ends_at": "2026-12-12T09:00"},
        {"starts_at": "soon", "ends_at": "2026-12-12T09:00"},
        {"starts_at": "2026-12-12T10:00", "ends_at": "2026-12-12T11:00", "gift_code": "NONE"},
    ):
        r = client.post("/console/mall/flash-sales", data={**good, **bad})
        assert r.status_code in (404, 422) and 'data-error-for="form"' in r.text, bad
    assert (
        "A flash sale must end after it starts."
        in client.post(
            "/console/mall/flash-sales",
            data={**good, "starts_at": "2026-12-12T10:00", "ends_at": "2026-12-12T09:00"},
        ).text
    )
    assert _count(database, FlashSale) == 1
    pool = {"csrf_token": token, "code": "WHEEL", "name": "Wheel", "cost_points": "20"}
    rows = {
        "prize_name": ["Thanks", "Bonus", ""],
        "prize_kind": ["none", "points", "none"],
        "prize_points": ["", "50", ""],
        "prize_odds": ["87.5", "12.5", ""],
        "prize_stock": ["", "10", ""],
        "fallback": "0",
    }
    saved = client.post("/console/mall/lotteries", data={**pool, **rows}, follow_redirects=False)
    assert saved.status_code == 303
    for bad in (
        {"prize_odds": ["80", "12.5", ""]},  # 92.5%
        {"prize_odds": ["87.49999", "12.50001", ""]},  # finer than a part per million
        {"fallback": "1"},  # the fallback has limited stock
        {"prize_points": ["", "", ""]},  # a points prize of no points
    ):
        r = client.post("/console/mall/lotteries", data={**pool, **rows, **bad})
        assert r.status_code == 422 and 'data-error-for="form"' in r.text, bad
    odd = client.post("/console/mall/lotteries", data={**pool, **rows, "prize_odds": ["1", "2"]})
    assert "100 percent" in odd.text
    page = client.get("/console/mall/promotions")
    assert 'data-pool="WHEEL" data-version="1"' in page.text and 'data-gift="MUG"' in page.text
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(LotteryPool)) == 1
