"""Mall pages with the test client: the console's gift and stock forms, the desk's refusals and
the portal's refusal all answer 4xx with nothing written; successes redirect."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.mall.models import Gift, Redemption, StockMovement
from tests.mall.helpers import grant, setup_gift, store
from tests.web.test_desk_pages import PASSWORD, _hidden
from tests.web.test_portal_pages import portal_sign_in


def _operator(client, database, clock) -> str:
    client.headers["Accept-Language"] = "en"
    with database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username="op1",
            display_name="Op",
            role="operator",
            password=PASSWORD,
            now=clock.now(),
        )
    form = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={
            "username": "op1",
            "password": PASSWORD,
            "csrf_token": _hidden(form.text, "csrf_token"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    return _hidden(client.get("/console/mall").text, "csrf_token")


def _count(database, model) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_console_gift_and_stock_forms(client, database, clock):
    token = _operator(client, database, clock)
    ok = client.post(
        "/console/mall/gifts",
        data={
            "csrf_token": token,
            "code": "MUG",
            "name": "Mug",
            "category": "home",
            "points": "300",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    bad = client.post(
        "/console/mall/gifts",
        data={"csrf_token": token, "code": "X Y", "name": "", "category": "home", "points": "x"},
    )
    assert bad.status_code == 422 and "Check the fields" in bad.text
    r = client.post(
        "/console/mall/stock",
        data={
            "csrf_token": token,
            "kind": "receipt",
            "gift_code": "MUG",
            "warehouse": "east",
            "quantity": "5",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    before = _count(database, StockMovement)
    for data in (
        {"kind": "adjustment", "warehouse": "east", "quantity": "-6", "reason": "count"},
        {"kind": "transfer", "warehouse": "east", "to_warehouse": "east", "quantity": "1"},
        {"kind": "receipt", "warehouse": "east", "quantity": "lots"},
    ):
        r = client.post(
            "/console/mall/stock", data={"csrf_token": token, "gift_code": "MUG", **data}
        )
        assert r.status_code in (409, 422), (data, r.status_code)
        assert 'data-error-for="form"' in r.text
    assert _count(database, StockMovement) == before
    page = client.get("/console/mall")
    assert 'data-gift="MUG"' in page.text and 'data-available="5"' in page.text
    assert 'data-testid="alerts"' in page.text
    raised = client.post(
        "/console/mall/purchase-requests", data={"csrf_token": token}, follow_redirects=False
    )
    assert raised.status_code == 303  # nothing short: no request
    missing = client.post("/console/mall/purchase-requests/99/receive", data={"csrf_token": token})
    assert missing.status_code == 404
    assert _count(database, Gift) == 1


def test_portal_refusal_and_desk_refusals(client, app, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, "DEAR", points=5000)
    no = make_member(phone="13900009999")
    grant(database, clock, no, 100)
    portal_sign_in(client, app, "13900009999")
    page = client.get("/portal/mall")
    assert 'data-gift="DEAR"' in page.text
    form = client.get("/portal/mall/gifts/DEAR")
    r = client.post(
        "/portal/mall/gifts/DEAR",
        data={
            "csrf_token": _hidden(form.text, "csrf_token"),
            "delivery": "pickup",
            "quantity": "1",
        },
    )
    assert r.status_code == 409 and "积分不足" in r.text  # the page speaks Chinese by default
    assert _count(database, Redemption) == 0
    # another member's code is not shown
    assert client.get("/portal/mall/codes/ZZZZZZZZZZ").status_code == 404
