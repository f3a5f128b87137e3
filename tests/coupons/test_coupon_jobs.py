"""Coupon jobs: automatic packs (welcome, first order, birthday in the business timezone),
expiry and reminders — each idempotent."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from patron.checks import run_all
from patron.coupons import jobs
from patron.coupons.models import Coupon
from patron.members.models import Member
from patron.webhooks.models import WebhookEvent
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.factories import order_body

SH = ZoneInfo("Asia/Shanghai")


def _set(client, h, **kw):
    r = client.put("/api/v1/coupon-settings", json=kw, headers=h)
    assert r.status_code == 200, r.text


def _coupons(database, member_no):
    with database.unit_of_work() as s:
        return sorted(
            s.scalars(
                select(Coupon.issue_key)
                .join(Member, Member.id == Coupon.member_id)
                .where(Member.member_no == member_no)
            )
        )


def test_packs_are_given_once(client, shop, make_member, database, clock, auth_headers):
    for code in ("WEL", "FIRST", "BDAY"):
        put_template(client, shop, code, {**THRESHOLD, "name": code})
    _set(
        client,
        auth_headers("admin"),
        welcome_templates=["WEL"],
        first_order_templates=["FIRST"],
        birthday_templates=["BDAY", "GONE"],
    )
    # 1 March, 10:00 in Shanghai: birthday today (a member born 29 Feb only in leap years)
    today = make_member(birthday="1990-03-01")
    other = make_member(birthday="1990-03-02")
    r = client.post("/api/v1/orders", json=order_body(other), headers=shop)
    assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        report = jobs.issue_auto(s, clock.now(), SH)
    assert (report.welcome, report.first_order, report.birthday) == (2, 1, 1)
    with database.unit_of_work() as s:
        again = jobs.issue_auto(s, clock.now(), SH)
    assert (again.welcome, again.first_order, again.birthday) == (0, 0, 0)
    assert _coupons(database, today) == ["birthday:2026", "welcome"]
    assert _coupons(database, other) == ["first_order", "welcome"]
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_expiry_and_reminders_run_once(client, shop, make_member, database, clock):
    put_template(
        client, shop, "T3", {**THRESHOLD, "rules": {**THRESHOLD["rules"], "valid_days": 3}}
    )
    no = make_member()
    r = client.post("/api/v1/coupon-templates/T3/issues", json={"member_nos": [no]}, headers=shop)
    assert r.json()["issued"] == 1
    with database.unit_of_work() as s:
        assert jobs.record_reminders(s, clock.now(), SH) == 1
        assert jobs.record_reminders(s, clock.now(), SH) == 0
    assert jobs.run_expire(database, clock.now()) == 0
    clock.advance(timedelta(days=3))
    assert jobs.run_expire(database, clock.now()) == 1
    assert jobs.run_expire(database, clock.now()) == 0
    with database.unit_of_work() as s:
        kinds = dict(
            s.execute(
                select(WebhookEvent.event_type, func.count())
                .where(WebhookEvent.event_type.like("coupon.%"))
                .group_by(WebhookEvent.event_type)
            ).all()
        )
        assert kinds == {"coupon.issued": 1, "coupon.expiring": 1, "coupon.expired": 1}
        assert run_all(s) == []
        # corrupt behind the service: a template counter off by one
        s.execute(update(Coupon).values(status="issued"))
    with database.unit_of_work() as s:
        assert any("history ends with expired" in v for v in run_all(s))


def test_february_29_birthdays_are_kept_on_the_28th(database):
    with database.unit_of_work() as s:
        assert jobs._birthday_members(s, date(2027, 2, 28)) == []
