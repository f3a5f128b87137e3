"""The console's check-in plans page and the portal's check-in page with a month plan."""

from __future__ import annotations

from sqlalchemy import select

from patron.coupons.models import Coupon
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture
from tests.web.test_portal_pages import portal_sign_in


def test_console_edits_the_check_in_plans(client, auth_headers, operator):  # noqa: F811
    put_template(client, auth_headers("operator"), "STREAK7", {**THRESHOLD, "name": "七天礼券"})
    page = client.get("/console/checkin-plans")
    assert page.status_code == 200 and 'id="checkin-form"' in page.text
    form = {
        "enabled": "1",
        "points_per_day": "3",
        "cycle_days": "0",
        "bonus_day_0": "5",
        "bonus_points_0": "15",
        "coupon_day_0": "7",
        "coupon_template_0": "STREAK7",
        "plan_days_0": "20",
        "plan_points_0": "200",
        "plan_days_1": "10",
        "plan_coupon_1": "STREAK7",
        "csrf_token": operator,
    }
    bad = client.post("/console/checkin-plans", data={**form, "plan_days_0": "40"})
    assert bad.status_code == 422 and "month plan days" in bad.text
    assert 'value="40"' in bad.text  # the form keeps what was typed
    saved = client.post("/console/checkin-plans", data=form, follow_redirects=False)
    assert saved.status_code == 303
    got = client.get("/api/v1/checkin/settings", headers=auth_headers("operator")).json()
    assert got["streak_coupons"] == {"7": "STREAK7"}
    assert got["month_plan"] == {
        "10": {"points": 0, "coupon": "STREAK7"},
        "20": {"points": 200, "coupon": None},
    }
    assert got["streak_bonuses"] == {"5": 15} and got["points_per_day"] == 3
    again = client.get("/console/checkin-plans").text
    assert "七天礼券" in again and "STREAK7</option>" not in again


def test_portal_shows_the_month_plan_and_gives_its_coupon(
    client, app, make_member, auth_headers, database
):
    h = auth_headers("operator")
    put_template(client, h, "MONTH1", THRESHOLD)
    body = {
        "points_per_day": 5,
        "streak_bonuses": {},
        "month_plan": {"1": {"points": 10, "coupon": "MONTH1"}, "3": {"points": 30}},
    }
    assert client.put("/api/v1/checkin/settings", json=body, headers=h).status_code == 200
    no = make_member("13922224444")
    portal_sign_in(client, app, "13922224444")
    page = client.get("/portal/checkin")
    assert 'data-month-days="0"' in page.text
    token = _csrf(page.text)
    done = client.post("/portal/checkin", data={"csrf_token": token})
    assert done.status_code == 200
    assert 'data-month-days="1"' in done.text
    with database.unit_of_work() as s:
        keys = s.scalars(select(Coupon.issue_key)).all()
    assert len(keys) == 1 and keys[0].endswith(":month1")
    assert no
