"""Every date-time the API accepts is aware and within 2000..2100 (UTC): values whose
conversion overflows (year 1 at +00:01, year 9999 at -23:59) are a 422, never a 500; orders
that earn may be backdated only so far."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select

from patron.kit.timeutil import LATEST, BoundedDateTime
from patron.orders.models import Order
from tests.factories import order_body

YEAR_ONE = "0001-01-01T00:00:00+00:01"  # one minute before datetime.min in UTC
YEAR_ONE_UTC = "0001-01-02T00:00:00+00:00"  # converts fine, but is no order date
YEAR_MAX = "9999-12-31T23:59:59-23:59"  # after datetime.max in UTC
EDGES = [YEAR_ONE, YEAR_ONE_UTC, YEAR_MAX, "1999-12-31T23:59:59+00:00", "2100-01-01T00:00:01Z"]


def _assert_out_of_range(r, field):
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert [(e["field"], e["type"]) for e in error["details"]["errors"]] == [
        (field, "datetime_out_of_range")
    ]
    assert "2000-01-01" in error["message"] and "2100-01-01" in error["message"]


def test_bounded_type_accepts_the_range_and_any_offset():
    bounded = TypeAdapter(BoundedDateTime)
    for ok in ("2000-01-01T00:00:00Z", "1999-12-31T23:00:00-01:00", "2100-01-01T00:00:00Z"):
        value = bounded.validate_python(ok)
        assert value == datetime.fromisoformat(ok)
        assert value.utcoffset() == datetime.fromisoformat(ok).utcoffset()  # offset kept
    for bad in EDGES:
        with pytest.raises(ValidationError) as exc:
            bounded.validate_python(bad)
        assert exc.value.errors()[0]["type"] == "datetime_out_of_range"
    assert datetime(2100, 1, 1, tzinfo=UTC) == LATEST


@pytest.mark.parametrize("value", EDGES)
def test_order_dates_out_of_range_are_refused(client, shop, make_member, database, value):
    no = make_member()
    for earn in (True, False):
        body = order_body(no, ext=f"O-{earn}", ordered_at=value, earn=earn)
        _assert_out_of_range(client.post("/api/v1/orders", json=body, headers=shop), "ordered_at")
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


@pytest.mark.parametrize("value", EDGES)
def test_return_dates_out_of_range_are_refused(client, shop, make_member, value):
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    back = {"external_id": "R-1", "returned_at": value, "lines": [{"line_no": 1, "quantity": 1}]}
    r = client.post("/api/v1/orders/pos/O-1/returns", json=back, headers=shop)
    _assert_out_of_range(r, "returned_at")


@pytest.mark.parametrize("value", EDGES)
def test_audit_filters_out_of_range_are_refused(client, auth_headers, value):
    admin = auth_headers("admin")
    for name in ("since", "until"):
        r = client.get("/api/v1/audit", params={name: value}, headers=admin)
        _assert_out_of_range(r, f"query.{name}")


@pytest.mark.parametrize("value", EDGES)
def test_tier_override_until_out_of_range_is_refused(client, auth_headers, make_member, value):
    no = make_member()
    hold = {"tier": "gold", "reason": "complaint", "until": value}
    r = client.post(f"/api/v1/members/{no}/tier/override", json=hold, headers=auth_headers("admin"))
    _assert_out_of_range(r, "until")


@pytest.mark.parametrize("value", EDGES)
def test_earning_preview_at_out_of_range_is_refused(client, auth_headers, value):
    preview = {"amount_fen": 10000, "category": "beauty", "at": value}
    r = client.post("/api/v1/rules/earning/preview", json=preview, headers=auth_headers("admin"))
    _assert_out_of_range(r, "at")


def test_orders_that_earn_are_backdated_at_most_the_window(
    client, shop, make_member, database, clock
):
    no = make_member()
    now = clock.now()

    def post(ext, at, **over):
        body = order_body(no, ext=ext, ordered_at=at.isoformat(), **over)
        return client.post("/api/v1/orders", json=body, headers=shop)

    inside = post("IN", now - timedelta(days=90) + timedelta(minutes=1))
    assert inside.status_code == 201, inside.text
    assert inside.json()["points_earned"] > 0
    old = post("OLD", now - timedelta(days=90, minutes=1))
    assert old.status_code == 422
    assert old.json()["error"]["code"] == "ordered_at_too_old"
    assert old.json()["error"]["details"] == {"field": "ordered_at", "max_days": 90}
    history = post("HIST", datetime(2001, 5, 1, 10, tzinfo=UTC), earn=False)
    assert history.status_code == 201, history.text
    assert history.json()["points_earned"] == 0
    future = post("FUT", now + timedelta(minutes=6))
    assert future.status_code == 422
    assert future.json()["error"]["code"] == "ordered_at_in_future"
    with database.unit_of_work() as s:
        assert sorted(s.scalars(select(Order.external_id))) == ["HIST", "IN"]
    # a till that retries a recorded order after the window gets its order back, not a 422
    clock.advance(timedelta(minutes=2))
    late = post("IN", now - timedelta(days=90) + timedelta(minutes=1))
    assert late.status_code == 200, late.text
    assert late.json()["points_earned"] == inside.json()["points_earned"]


def test_the_backdating_window_is_a_setting(settings, database, clock, shop, make_member):
    from fastapi.testclient import TestClient

    from patron.app import create_app

    no = make_member()
    app = create_app(settings.model_copy(update={"order_backdate_days": 7}), database, clock)
    with TestClient(app) as c:
        for ext, days, status in (("A", 6, 201), ("B", 8, 422)):
            at = (clock.now() - timedelta(days=days)).isoformat()
            r = c.post("/api/v1/orders", json=order_body(no, ext=ext, ordered_at=at), headers=shop)
            assert r.status_code == status, r.text


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "1899-12-31"])
def test_console_date_filters_at_the_edges_are_form_errors(client, database, clock, value):
    """The pages parse their own dates; edge values are a form error, never a 500."""
    from tests.web.test_pages import _sign_in, _staff

    client.headers["Accept-Language"] = "en"
    assert _sign_in(client, _staff(database, clock, "admin")).status_code == 303
    for path in ("/console/", "/console/audit"):
        for params in ({"from": value, "to": "2026-03-01"}, {"from": "2026-02-01", "to": value}):
            r = client.get(path, params=params)
            assert r.status_code == 422, (path, params, r.status_code)
