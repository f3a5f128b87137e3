"""The clerk desk without a browser (SQLite and PostgreSQL): lookups, registration, the basket,
commit idempotency, the points cap and returns — each refusal changes nothing."""

from __future__ import annotations

import html
import re
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.members import card
from patron.members import service as members_service
from patron.members.models import Member
from patron.orders.models import Order, OrderReturn
from tests.factories import order_body

PASSWORD = "desk-test-pass-1"
SH = ZoneInfo("Asia/Shanghai")


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in page"
    return found.group(1)


@pytest.fixture
def desk(client, database, clock, shop):
    """A clerk signed in at store SH001, reading English; returns the session's CSRF token."""
    client.headers["Accept-Language"] = "en"
    with database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username="clerk1",
            display_name="Clerk",
            role="clerk",
            password=PASSWORD,
            now=clock.now(),
        )
    form = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={
            "username": "clerk1",
            "password": PASSWORD,
            "csrf_token": _hidden(form.text, "csrf_token"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    token = _hidden(client.get("/console/desk").text, "csrf_token")
    r = client.post(
        "/console/desk/store",
        data={"store_code": "SH001", "back": "/console/desk", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "SH001" in client.get("/console/desk").text
    return token


def _member(database, member_no):
    with database.unit_of_work() as s:
        return s.scalar(select(Member).where(Member.member_no == member_no))


def _grant(database, clock, member_no, points):
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        ctx = ledger.Ctx(Principal.system("t"), clock.now(), SH)
        flows.earn(s, ctx, mid, points=points, source_type="test", source_id=f"grant-{points}")


def _available(database, clock, member_no):
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        return ledger_queries.balance(s, mid, clock.now()).available


def _count(database, model):
    with database.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(model))


def _basket(client, token, member_no, order_no, skus, **extra):
    data = {
        "csrf_token": token,
        "member_no": member_no,
        "order_no": order_no,
        "sku": [s for s, _q in skus],
        "qty": [str(q) for _s, q in skus],
        **extra,
    }
    return client.post("/console/desk/basket", data=data, follow_redirects=False)


def test_lookup_by_phone_number_and_member_code(client, desk, make_member, database, clock, app):
    no = make_member(phone="13900001111", name="王芳")
    for q in ("13900001111", no, " 139 0000 1111 "):
        r = client.get("/console/desk", params={"q": q}, follow_redirects=False)
        assert r.status_code == 303, q
        assert r.headers["location"] == f"/console/desk?member={no}"
    page = client.get(f"/console/desk?member={no}")
    assert "王芳" in page.text and "139****1111" in page.text
    key = app.state.keys["token_key"]
    token = card.issue(_member(database, no).id, key, clock.now())
    r = client.get("/console/desk", params={"q": token}, follow_redirects=False)
    assert r.headers["location"] == f"/console/desk?member={no}"
    clock.advance(timedelta(minutes=3))
    r = client.get("/console/desk", params={"q": token})
    assert r.status_code == 422
    assert 'data-error-for="q"' in r.text and "expired" in r.text
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    r = client.get("/console/desk", params={"q": forged})
    assert r.status_code == 422 and "not valid" in r.text
    r = client.get("/console/desk", params={"q": "13900009999"})
    assert r.status_code == 422 and "No member has this phone" in r.text
    # The number not found carries into registration: the clerk does not type it again.
    link = re.search(r'data-register-phone href="([^"]+)"', r.text)
    assert link and html.unescape(link.group(1)) == "/console/desk/register?phone=13900009999"
    form = client.get("/console/desk/register", params={"phone": "13900009999"})
    assert 'value="13900009999"' in form.text
    r = client.get("/console/desk", params={"q": "王大"})
    assert r.status_code == 422 and "data-register-phone" not in r.text  # a name: no offer
    # A name that fits several members lists them to choose from.
    other = make_member(phone="13900001112", name="王磊")
    r = client.get("/console/desk", params={"q": "王"})
    assert r.status_code == 200 and 'data-testid="matches"' in r.text
    assert f"?member={no}" in r.text and f"?member={other}" in r.text


def test_register_refuses_bad_and_taken_phones_and_writes_nothing(
    client, desk, make_member, database
):
    existing = make_member(phone="13900002222")
    before = _count(database, Member)
    r = client.post(
        "/console/desk/register",
        data={"phone": "12345", "name": "李雷", "csrf_token": desk},
    )
    assert r.status_code == 422
    assert 'data-error-for="phone"' in r.text
    r = client.post(
        "/console/desk/register",
        data={"phone": "139 0000 2222", "name": "李雷", "csrf_token": desk},
    )
    assert r.status_code == 422
    assert f"already belongs to member {existing}" in r.text
    r = client.post(
        "/console/desk/register",
        data={"phone": "13900002222", "csrf_token": desk},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 422 and f"该手机号已属于会员 {existing}" in r.text
    r = client.post(
        "/console/desk/register",
        data={"phone": "13900003333", "birthday": "2999-01-01", "csrf_token": desk},
    )
    assert r.status_code == 422 and 'data-error-for="birthday"' in r.text
    assert _count(database, Member) == before
    r = client.post(
        "/console/desk/register",
        data={
            "phone": "13900003333",
            "name": "李雷",
            "birthday": "1990-05-20",
            "consent": ["sms", "wechat"],
            "csrf_token": desk,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _count(database, Member) == before + 1
    with database.unit_of_work() as s:
        m = s.scalar(select(Member).where(Member.name == "李雷"))
        assert m.registration_channel == "store" and m.registration_store_code == "SH001"
        consents = members_service.consents_of(s, m.id)
        assert {c.channel for c in consents if c.granted} == {"sms", "wechat"}
    assert r.headers["location"] == f"/console/desk?member={m.member_no}"


def test_basket_quote_commit_twice_records_one_order(client, desk, make_member, database, clock):
    no = make_member()
    _grant(database, clock, no, 3000)
    page = client.get(f"/console/desk?member={no}")
    order_no = _hidden(page.text, "order_no")
    assert order_no.startswith("SH001-20260301-")
    r = _basket(client, desk, no, order_no, [], add="BEA-1")
    assert r.status_code == 200, r.text
    r = _basket(client, desk, no, order_no, [("BEA-1", 1)], add="fre-1")  # scanners vary case
    r = _basket(client, desk, no, order_no, [("BEA-1", 1), ("FRE-1", 1)], action="inc:1")
    assert r.status_code == 200
    assert 'data-testid="quote"' in r.text
    r = _basket(
        client, desk, no, order_no, [("BEA-1", 1), ("FRE-1", 2)], points="3000", action="quote"
    )
    assert r.status_code == 200, r.text
    quoted, total, earned = (
        _hidden(r.text, "quoted"),
        int(_hidden(r.text, "expected_total_fen")),
        int(_hidden(r.text, "expected_points_earned")),
    )
    assert total == 19900 + 2 * 1250 and earned > 0
    commit = {
        "points": "3000",  # all of it: a replay must not be re-quoted against the new balance
        "action": "commit",
        "quoted": quoted,
        "expected_total_fen": str(total),
        "expected_points_earned": str(earned),
        "payment_method": "wechat",
    }
    lines = [("BEA-1", 1), ("FRE-1", 2)]
    # A stale quote: 409 with the fresh amounts, nothing written.
    stale = _basket(client, desk, no, order_no, lines, **{**commit, "expected_total_fen": "1"})
    assert stale.status_code == 409 and "changed since the quote" in stale.text
    assert _count(database, Order) == 0
    first = _basket(client, desk, no, order_no, lines, **commit)
    again = _basket(client, desk, no, order_no, lines, **commit)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert _count(database, Order) == 1
    assert _available(database, clock, no) == earned
    receipt = client.get(first.headers["location"])
    assert order_no in receipt.text and "¥194.00" in receipt.text  # 224.00 − 30.00 in points
    assert f'data-testid="receipt-balance">{earned:,}<' in receipt.text
    assert 'data-testid="receipt-store">上海店<' in receipt.text  # the store's name, not its code
    assert 'data-testid="receipt-saved"' not in receipt.text  # list prices: nothing saved


def test_simultaneous_taps_of_commit_record_one_order(
    app, client, desk, make_member, database, clock
):
    if not database.url.startswith("postgresql"):
        pytest.skip("real concurrency: PostgreSQL only (SQLite writes one at a time)")
    no = make_member()
    _grant(database, clock, no, 3000)
    lines = [("BEA-1", 1)]
    r = _basket(client, desk, no, "SH001-C-1", lines, points="3000", action="quote")
    earned = int(_hidden(r.text, "expected_points_earned"))
    commit = {
        "points": "3000",  # all of it: a late tap must replay, not re-quote
        "action": "commit",
        "quoted": _hidden(r.text, "quoted"),
        "expected_total_fen": _hidden(r.text, "expected_total_fen"),
        "expected_points_earned": str(earned),
    }
    n = 4
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def tap(i):
        tablet = TestClient(app)
        for c in client.cookies.jar:
            tablet.cookies.set(c.name, c.value, domain=c.domain, path=c.path)
        barrier.wait()
        results[i] = _basket(tablet, desk, no, "SH001-C-1", lines, **commit)

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [303] * n
    assert len({r.headers["location"] for r in results}) == 1
    assert _count(database, Order) == 1
    assert _available(database, clock, no) == earned


def test_points_over_the_usable_amount_are_refused(client, desk, make_member, database, clock):
    no = make_member()
    _grant(database, clock, no, 3000)
    lines = [("FRE-1", 1)]  # ¥12.50: at most half, 625 points, may be paid with points
    r = _basket(client, desk, no, "SH001-T-1", lines, points="626", action="quote")
    assert r.status_code == 422
    assert 'data-error-for="points"' in r.text and "625" in r.text
    r = _basket(
        client,
        desk,
        no,
        "SH001-T-1",
        lines,
        points="626",
        action="commit",
        quoted="FRE-1*1|626",
        expected_total_fen="1250",
        expected_points_earned="0",
    )
    assert r.status_code == 422
    assert _count(database, Order) == 0
    assert _available(database, clock, no) == 3000
    # Bad quantities and unknown products: a message next to the field.
    r = _basket(client, desk, no, "SH001-T-1", [("FRE-1", "x")], action="quote")
    assert r.status_code == 422 and 'data-error-for="qty"' in r.text
    r = _basket(client, desk, no, "SH001-T-1", lines, add="NOPE-404")
    assert r.status_code == 422 and 'data-error-for="add"' in r.text
    # Part of a SKU or a name lists the products to tap; tapping one adds it.
    r = _basket(client, desk, no, "SH001-T-1", lines, add="BE")
    assert r.status_code == 200 and 'value="pick:BEA-1"' in r.text
    assert 'data-sku="BEA-1"' not in r.text
    r = _basket(client, desk, no, "SH001-T-1", lines, action="pick:BEA-1")
    assert 'data-sku="BEA-1"' in r.text and 'data-sku="FRE-1"' in r.text
    r = _basket(client, desk, no, "SH001-T-1", [("BEA-1", 1), ("FRE-1", 1)], action="remove:0")
    assert 'data-sku="BEA-1"' not in r.text and 'data-sku="FRE-1"' in r.text


def test_a_product_taken_off_sale_is_marked_on_its_line(client, desk, shop, make_member):
    no = make_member()
    lines = [("BEA-1", 1), ("FRE-1", 1)]
    assert _basket(client, desk, no, "SH001-S-1", lines, action="quote").status_code == 200
    r = client.put(
        "/api/v1/products/FRE-1",
        json={
            "sku": "FRE-1",
            "name": "FRE-1",
            "category_code": "fresh",
            "price_fen": 1250,
            "is_active": False,
        },
        headers=shop,
    )
    assert r.status_code == 200, r.text
    r = _basket(client, desk, no, "SH001-S-1", lines, action="quote")
    assert r.status_code == 422
    assert "no longer on sale" in r.text and 'data-testid="quote"' not in r.text
    r = _basket(client, desk, no, "SH001-S-1", [("bad sku!", 1)], action="quote")
    assert r.status_code == 422 and "not a product code" in r.text


def test_a_price_change_after_the_quote_is_quoted_again(client, desk, shop, make_member, database):
    no = make_member()
    lines = [("FRE-1", 2)]
    r = _basket(client, desk, no, "SH001-Q-1", lines, action="quote")
    commit = {
        "action": "commit",
        "quoted": _hidden(r.text, "quoted"),
        "expected_total_fen": _hidden(r.text, "expected_total_fen"),
        "expected_points_earned": _hidden(r.text, "expected_points_earned"),
    }
    assert commit["expected_total_fen"] == "2500"
    r = client.put(
        "/api/v1/products/FRE-1",
        json={"sku": "FRE-1", "name": "FRE-1", "category_code": "fresh", "price_fen": 1500},
        headers=shop,
    )
    assert r.status_code == 200, r.text
    r = _basket(client, desk, no, "SH001-Q-1", lines, **commit)
    assert r.status_code == 409
    assert 'data-testid="notice"' in r.text and "changed since the quote" in r.text
    assert _hidden(r.text, "expected_total_fen") == "3000"  # the new quote, ready to confirm
    assert _count(database, Order) == 0
    again = {
        k: _hidden(r.text, k) for k in ("quoted", "expected_total_fen", "expected_points_earned")
    }
    r = _basket(client, desk, no, "SH001-Q-1", lines, action="commit", **again)
    assert r.status_code == 303
    assert _count(database, Order) == 1


def test_the_desk_needs_its_permissions(client, desk, make_member, database, clock):
    no = make_member()
    with database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username="analyst1",
            display_name="Analyst",
            role="analyst",
            password=PASSWORD,
            now=clock.now(),
        )
    client.cookies.clear()
    form = client.get("/console/login")
    client.post(
        "/console/login",
        data={
            "username": "analyst1",
            "password": PASSWORD,
            "csrf_token": _hidden(form.text, "csrf_token"),
        },
    )
    page = client.get(f"/console/desk?member={no}")
    assert page.status_code == 200 and 'data-testid="basket"' not in page.text
    token = _hidden(page.text, "csrf_token")
    r = _basket(client, token, no, "SH001-P-1", [("FRE-1", 1)], action="quote")
    assert r.status_code == 403
    r = client.post("/console/desk/register", data={"phone": "13900004444", "csrf_token": token})
    assert r.status_code == 403
    assert client.get(f"/console/desk/returns?member={no}").status_code == 403


def test_returns_refuse_too_many_and_claw_back(client, desk, make_member, database, clock):
    no = make_member()
    lines = [("BEA-1", 2)]
    r = _basket(client, desk, no, "SH001-R-1", lines, action="quote")
    commit = {
        "action": "commit",
        "quoted": _hidden(r.text, "quoted"),
        "expected_total_fen": _hidden(r.text, "expected_total_fen"),
        "expected_points_earned": _hidden(r.text, "expected_points_earned"),
    }
    assert _basket(client, desk, no, "SH001-R-1", lines, **commit).status_code == 303
    earned = _available(database, clock, no)
    assert earned > 0
    page = client.get(f"/console/desk/returns?member={no}")
    assert page.status_code == 200 and "SH001-R-1" in page.text
    return_id = _hidden(page.text, "return_id")
    form = {
        "csrf_token": desk,
        "member_no": no,
        "source": "desk",
        "external_id": "SH001-R-1",
        "return_id": return_id,
        "line_no": ["1"],
    }
    r = client.post("/console/desk/returns", data={**form, "qty": ["3"]})
    assert r.status_code == 422 and "Only 2 of this line" in r.text
    r = client.post("/console/desk/returns", data={**form, "qty": [""]})
    assert r.status_code == 422
    assert _count(database, OrderReturn) == 0
    assert _available(database, clock, no) == earned
    r = client.post("/console/desk/returns", data={**form, "qty": ["1"]})
    assert r.status_code == 200, r.text
    assert _available(database, clock, no) == earned - earned // 2
    assert f'data-testid="clawed">{earned // 2:,}<' in r.text
    # The same return tapped twice (seconds apart) is one return.
    clock.advance(timedelta(seconds=3))
    again = client.post("/console/desk/returns", data={**form, "qty": ["1"]})
    assert again.status_code == 200 and f'data-testid="clawed">{earned // 2:,}<' in again.text
    assert _count(database, OrderReturn) == 1


def test_returns_page_pages_back_and_finds_the_receipts_order(
    client, desk, make_member, auth_headers
):
    """A member with more orders than one page: older ones are a page away or found by the
    order number on the receipt; a refused return of an old order shows that order again."""
    no = make_member()
    h = auth_headers("admin")
    for day in range(1, 13):  # twelve orders, O-01 the oldest
        body = order_body(no, ext=f"O-{day:02d}", ordered_at=f"2026-02-{day:02d}T10:00:00+08:00")
        assert client.post("/api/v1/orders", json=body, headers=h).status_code in (200, 201)
    first = client.get(f"/console/desk/returns?member={no}")
    shown = re.findall(r'data-order="([^"]+)"', first.text)
    assert shown == [f"O-{d:02d}" for d in range(12, 2, -1)]
    assert 'rel="next"' in first.text
    older = client.get(f"/console/desk/returns?member={no}&page=2")
    assert re.findall(r'data-order="([^"]+)"', older.text) == ["O-02", "O-01"]
    found = client.get(f"/console/desk/returns?member={no}&order=O-01")
    assert re.findall(r'data-order="([^"]+)"', found.text) == ["O-01"]
    missing = client.get(f"/console/desk/returns?member={no}&order=O-99")
    assert 'data-testid="no-order"' in missing.text
    bad = client.get(f"/console/desk/returns?member={no}&order=%3Cscript%3E")
    assert bad.status_code == 422 and 'data-error-for="order"' in bad.text
    form = {
        "csrf_token": desk,
        "member_no": no,
        "source": "pos",
        "external_id": "O-01",
        "return_id": _hidden(found.text, "return_id"),
        "line_no": ["1"],
        "qty": ["5"],
    }
    refused = client.post("/console/desk/returns", data=form)
    assert refused.status_code == 422
    assert re.findall(r'data-order="([^"]+)"', refused.text) == ["O-01"]
    assert "Only 1 of this line" in refused.text


def _zh(client, database):
    from patron.auth.models import StaffUser

    client.cookies.set("patron_lang", "zh_CN")
    with database.unit_of_work() as s:
        s.execute(StaffUser.__table__.update().values(locale="zh_CN"))


def test_returns_speak_chinese(client, desk, make_member, database, clock, shop, monkeypatch):
    """The order's channel, a tier lost on a return and a refused return in words, not codes."""
    from patron.tiers import service as tiers

    with database.unit_of_work() as s:
        ladder = tiers.get_ladder(s).model_copy(update={"demote_on_refund": True})
        tiers.put_ladder(s, Principal.system("tests"), ladder, clock.now())
    no = make_member()
    body = order_body(
        no,
        ext="ON-1",
        channel="online",
        store_code=None,
        lines=[{"sku": "BEA-1", "quantity": 6, "unit_price_fen": 19900}],
        payments=[{"method": "wechat", "amount_fen": 119400}],
    )
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text
    _zh(client, database)
    page = client.get(f"/console/desk/returns?member={no}")
    heading = re.search(r"<h2>ON-1 <small[^>]*>([^<]*)</small>", page.text).group(1)
    assert "线上" in heading and "online" not in heading
    assert "银卡会员" in page.text  # the member's tier on the card
    form = {
        "csrf_token": desk,
        "member_no": no,
        "source": "pos",
        "external_id": "ON-1",
        "return_id": _hidden(page.text, "return_id"),
    }
    # The same line twice (an edited form): the service refuses, in the clerk's language.
    r = client.post(
        "/console/desk/returns", data={**form, "line_no": ["1", "1"], "qty": ["6", "6"]}
    )
    assert r.status_code == 422
    assert "退回的件数超过订单剩余可退件数" in r.text and "remain" not in r.text
    assert _count(database, OrderReturn) == 0
    r = client.post("/console/desk/returns", data={**form, "line_no": ["1"], "qty": ["5"]})
    assert r.status_code == 200, r.text
    done = r.text[r.text.index('data-testid="return-done"') :]
    assert "普通会员" in done and "regular" not in done


def test_refusals_at_the_desk_are_in_words_for_the_clerk(
    client, desk, make_member, database, monkeypatch
):
    """Neither the schema's validation text nor a service's English message reaches the page."""
    no = make_member()
    page = client.get(f"/console/desk?member={no}")
    order_no = _hidden(page.text, "order_no")
    r = _basket(client, desk, no, order_no, [("BEA-1", 1)], action="quote")
    commit = {
        "action": "commit",
        "quoted": _hidden(r.text, "quoted"),
        "expected_total_fen": str(10**12),  # beyond any amount: an edited form
        "expected_points_earned": _hidden(r.text, "expected_points_earned"),
    }
    r = _basket(client, desk, no, order_no, [("BEA-1", 1)], **commit)
    assert r.status_code == 422
    error = re.search(r'data-error-for="form">([^<]*)<', r.text).group(1)
    assert error == "This form was changed or is out of date; reload the page and try again."
    assert _count(database, Order) == 0

    from patron.errors import Invalid
    from patron.members import service as members_service

    def refuse(*args, **kwargs):
        raise Invalid("referrer_not_found", "No member with number 1 to credit as referrer.")

    monkeypatch.setattr(members_service, "register", refuse)
    _zh(client, database)
    r = client.post("/console/desk/register", data={"phone": "13900005555", "csrf_token": desk})
    assert r.status_code == 422
    error = re.search(r'data-error-for="form">([^<]*)<', r.text).group(1)
    assert error == "操作未成功，数据没有任何改动。"


def test_camera_messages_are_in_the_page_language(client, desk, database):
    _zh(client, database)
    page = client.get("/console/desk").text
    scanner = re.search(r'<div id="scanner"[^>]*>', page).group(0)
    for kind in ("denied", "missing", "busy", "failed"):
        found = re.search(rf'data-msg-{kind}="([^"]+)"', scanner)
        assert found and "摄像头" in found.group(1), kind


def test_numbers_of_any_length_are_refused_not_crashed_on(
    client, desk, make_member, database, shop
):
    """int() refuses strings of more than 4,300 digits (ValueError): every number the desk
    parses is bounded first, so such a value is a 422 next to its field, never a 500."""
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    page = client.get(f"/console/desk/returns?member={no}")
    form = {
        "csrf_token": desk,
        "member_no": no,
        "source": "pos",
        "external_id": "O-1",
        "return_id": _hidden(page.text, "return_id"),
    }
    huge = "9" * 5000
    r = client.post("/console/desk/returns", data={**form, "line_no": ["1"], "qty": [huge]})
    assert r.status_code == 422 and "Enter a whole number of items." in r.text
    assert huge not in r.text
    r = client.post("/console/desk/returns", data={**form, "line_no": [huge], "qty": ["1"]})
    assert r.status_code == 422 and "Enter how many items of each line come back." in r.text
    r = client.post(
        "/console/desk/returns", data={**form, "line_no": ["1", "2"], "qty": ["٣", "1"]}
    )
    assert r.status_code == 422 and "Enter a whole number of items." in r.text
    assert _count(database, OrderReturn) == 0
    basket = _hidden(client.get(f"/console/desk?member={no}").text, "order_no")
    r = _basket(client, desk, no, basket, [("BEA-1", huge)], action="quote")
    assert r.status_code == 422 and "Enter a quantity from 1 to 100000." in r.text
    assert huge not in r.text


def test_receipt_shows_what_a_gold_member_saved(client, desk, make_member, auth_headers):
    no = make_member(phone="13900005555")
    growth = {"ledger": "growth", "amount": 6000, "reason": "gold for the test"}
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments", json=growth, headers=auth_headers("admin")
    )
    assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    page = client.get(f"/console/desk?member={no}")
    order_no = _hidden(page.text, "order_no")
    lines = [("BEA-1", 1)]
    r = _basket(client, desk, no, order_no, lines, action="quote")
    assert r.status_code == 200, r.text
    commit = {
        "action": "commit",
        "quoted": _hidden(r.text, "quoted"),
        "expected_total_fen": _hidden(r.text, "expected_total_fen"),
        "expected_points_earned": _hidden(r.text, "expected_points_earned"),
        "payment_method": "cash",
    }
    done = _basket(client, desk, no, order_no, lines, **commit)
    assert done.status_code == 303, done.text
    receipt = client.get(done.headers["location"]).text
    saved = re.search(r'data-testid="receipt-saved">−(¥[0-9,.]+)<', receipt)
    assert saved, receipt
    assert saved.group(1) == "¥20.00"  # member price ¥179.00 for gold, list price ¥199.00
