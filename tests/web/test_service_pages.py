"""The service desk through the pages (SQLite and PostgreSQL): a member finds an answer while
typing, opens a missing-points dispute in the portal; the console's queue shows it, an
operator answers and resolves it with a correction through the adjustment flow; the member
reads the answer, rates it, and the NPS page counts the rating by tier and store."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import order_body
from tests.web.test_members_pages import PHONE, _csrf, member, staff  # noqa: F401
from tests.web.test_portal_pages import portal_sign_in


def _article(client: Any, h: dict[str, str]) -> None:
    for locale, title, body in (
        ("zh_CN", "积分未到账怎么办", "消费后积分在退货期结束后到账。"),
        ("en", "Points not arrived yet", "Points arrive after the return window."),
    ):
        r = client.put(
            f"/api/v1/service/articles/points-late/{locale}",
            json={"title": title, "body": body, "keywords": "missing points"},
            headers=h,
        )
        assert r.status_code == 200, r.text


def test_a_dispute_from_the_portal_resolved_in_the_console(
    staff,  # noqa: F811
    member,  # noqa: F811
    client,
    app,
    auth_headers,
    shop,
):
    r = client.post("/api/v1/orders", json=order_body(member, "R-77"), headers=shop)
    assert r.status_code == 201, r.text
    _article(client, auth_headers("operator"))

    client.headers["Accept-Language"] = "zh-CN"
    portal_sign_in(client, app, PHONE)
    page = client.get("/portal/help")
    assert page.status_code == 200 and "R-77" in page.text
    hint = client.get("/portal/help/suggest", params={"subject": "我的积分没到账"})
    assert "积分未到账怎么办" in hint.text and "/portal/help/articles/points-late" in hint.text
    assert "消费后积分" in client.get("/portal/help/articles/points-late").text
    token = _csrf(page.text)
    order_id = re.search(r'<option value="(\d+)"[^>]*>[^<]*R-77', page.text)
    assert order_id, page.text
    refused = client.post(
        "/portal/help/tickets",
        data={
            "csrf_token": token,
            "category": "missing_points",
            "subject": "积分没到账",
            "body": "x",
        },
    )
    assert refused.status_code == 422 and 'data-error-for="order_id"' in refused.text
    sent = client.post(
        "/portal/help/tickets",
        data={
            "csrf_token": token,
            "category": "missing_points",
            "subject": "积分没到账",
            "body": "上周的订单没有积分",
            "order_id": order_id.group(1),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    ticket_url = sent.headers["location"]
    ticket_no = ticket_url.rsplit("/", 1)[1]

    operator = staff("operator")
    queue = operator.get("/console/service").text
    assert f'data-ticket="{ticket_no}"' in queue and "Missing points" in queue
    page = operator.get(f"/console/service/{ticket_no}").text
    assert "data-dispute" in page and "R-77" in page
    token = _csrf(page)
    bad = operator.post(
        f"/console/service/{ticket_no}/resolve",
        data={"csrf_token": token, "resolution": "", "correction_points": "100"},
    )
    assert bad.status_code == 422 and 'data-error-for="resolve"' in bad.text
    r = operator.post(
        f"/console/service/{ticket_no}/reply",
        data={"csrf_token": token, "body": "We are checking the order."},
    )
    assert r.status_code == 200 and "We are checking the order." in r.text
    r = operator.post(
        f"/console/service/{ticket_no}/resolve",
        data={"csrf_token": token, "resolution": "已补发 100 积分", "correction_points": "100"},
    )
    assert r.status_code == 200, r.text
    assert 'data-correction="applied"' in r.text

    mine = client.get(ticket_url).text
    assert "已补发 100 积分" in mine and "We are checking the order." in mine
    assert 'data-testid="survey"' in mine
    token = _csrf(mine)
    rated = client.post(
        f"{ticket_url}/survey",
        data={"csrf_token": token, "nps": "9", "satisfaction": "5", "comment": "快"},
    )
    assert rated.status_code == 200 and "data-rated" in rated.text
    again = client.post(f"{ticket_url}/survey", data={"csrf_token": token, "nps": "3"})
    assert again.status_code == 422

    nps = operator.get("/console/service/nps").text
    assert 'data-nps-overall="100"' in nps
    assert 'data-nps-row="gold"' in nps and "上海店" in nps


def test_an_operator_opens_a_ticket_and_a_member_cannot_see_another_members(
    staff,  # noqa: F811
    member,  # noqa: F811
    client,
    app,
    make_member,
):
    clerk = staff("clerk")
    form = clerk.get("/console/service/new")
    token = _csrf(form.text)
    bad = clerk.post(
        "/console/service/new",
        data={"csrf_token": token, "member_no": "0000000000", "subject": "s", "body": "b"},
    )
    assert bad.status_code == 422 and 'data-error-for="member_no"' in bad.text
    other = make_member()
    r = clerk.post(
        "/console/service/new",
        data={
            "csrf_token": token,
            "member_no": other,
            "category": "benefit",
            "priority": "high",
            "subject": "Birthday coupon",
            "body": "Not received",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    other_ticket = r.headers["location"].rsplit("/", 1)[1]
    portal_sign_in(client, app, PHONE)
    assert client.get(f"/portal/help/{other_ticket}").status_code == 404
    assert "Birthday coupon" not in client.get("/portal/help").text


def test_a_held_redemption_is_confirmed_with_an_sms_code_in_the_portal(
    client, app, auth_headers, make_member, database, clock
):
    import re as _re

    from tests.mall.helpers import grant, setup_gift, store
    from tests.web.test_portal_pages import _last_code

    op = auth_headers("operator")
    store(client, op)
    setup_gift(client, op, stock={"east": 5})
    limits = client.get("/api/v1/risk/settings", headers=op).json()
    r = client.put(
        "/api/v1/risk/settings",
        json={**limits, "member_per_hour": 1, "step_up_threshold": 30, "review_threshold": 90},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 200, r.text
    phone = "13911117777"
    no = make_member(phone=phone)
    grant(database, clock, no, 3_000)
    portal_sign_in(client, app, phone)
    form = {"delivery": "pickup", "store_code": "SH001", "quantity": "1"}
    token = _csrf(client.get("/portal/mall/gifts/MUG").text)
    first = client.post("/portal/mall/gifts/MUG", data={**form, "csrf_token": token})
    assert first.status_code == 200 and "/portal/mall/codes/" in str(first.url)
    held = client.post(
        "/portal/mall/gifts/MUG", data={**form, "csrf_token": token}, follow_redirects=False
    )
    assert held.status_code == 303, held.text
    review_url = held.headers["location"]
    assert _re.fullmatch(r"/portal/risk/\d+", review_url)
    page = client.get(review_url).text
    assert 'name="code"' in page
    wrong = client.post(review_url, data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 422 and 'data-error-for="code"' in wrong.text
    ok = client.post(
        review_url, data={"csrf_token": token, "code": _last_code(app)}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/portal/mall/gifts/MUG"
    again = client.post("/portal/mall/gifts/MUG", data={**form, "csrf_token": token})
    assert again.status_code == 200 and "/portal/mall/codes/" in str(again.url)
