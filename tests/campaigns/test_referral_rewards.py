"""Referral rewards beyond points: a coupon for each side, growth and the tier-up option for
the referrer, what a clawback takes back, and the settings' API."""

from __future__ import annotations

from sqlalchemy import select, update

from patron.audit.models import AuditRecord
from patron.campaigns.domain import ReferralSettings, referrer_growth
from patron.campaigns.models import Referral
from patron.checks import run_all
from patron.coupons.models import Coupon
from patron.program.models import ProgramSetting
from patron.webhooks.models import WebhookEvent
from tests.campaigns.test_referrals import _points, _run, _settings
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.factories import order_body

RETURN = {"returned_at": "2026-03-01T12:00:00+08:00", "lines": [{"line_no": 1, "quantity": 1}]}


def _wallet(client, h, no):
    r = client.get(f"/api/v1/members/{no}/coupons?all=true", headers=h)
    assert r.status_code == 200, r.text
    return [(c["template"], c["status"]) for c in r.json()]


def _tier(client, h, no):
    body = client.get(f"/api/v1/members/{no}/tier", headers=h).json()
    return body["tier"], body["window_growth"]


def _referred_and_bought(client, shop, make_member):
    a = make_member("13800000001")
    b = make_member("13700000002", referrer_member_no=a)
    r = client.post("/api/v1/orders", json=order_body(b, ext="O-b"), headers=shop)
    assert r.status_code == 201, r.text
    return a, b


def _last_referral_event(database):
    with database.unit_of_work() as s:
        return s.scalars(
            select(WebhookEvent.payload)
            .where(WebhookEvent.event_type == "referral.changed")
            .order_by(WebhookEvent.id.desc())
        ).first()


def test_the_growth_a_referrer_gets():
    plain = ReferralSettings(referrer_growth=300)
    assert referrer_growth(plain, window_growth=200, next_threshold=1_000) == 300
    up = ReferralSettings(referrer_growth=300, referrer_tier_up=True)
    # what the referrer lacks for the next tier, never less than the set amount
    assert referrer_growth(up, window_growth=200, next_threshold=1_000) == 800
    assert referrer_growth(up, window_growth=900, next_threshold=1_000) == 300
    # at the top of the ladder: the set amount only
    assert referrer_growth(up, window_growth=9_000, next_threshold=None) == 300
    assert referrer_growth(ReferralSettings(), window_growth=0, next_threshold=1_000) == 0


def test_coupons_for_both_sides_and_the_tier_up(client, shop, make_member, database, clock):
    put_template(client, shop, "REF-A", THRESHOLD)
    put_template(client, shop, "REF-B", THRESHOLD)
    _settings(
        database,
        clock,
        referrer_coupon="REF-A",
        referee_coupon="REF-B",
        referrer_tier_up=True,
    )
    a, b = _referred_and_bought(client, shop, make_member)
    assert _tier(client, shop, a) == ("regular", 0)
    assert _run(client, shop)["rewarded"] == 1
    assert _points(client, shop, a) == 500
    assert _wallet(client, shop, a) == [("REF-A", "issued")]
    assert _wallet(client, shop, b) == [("REF-B", "issued")]
    # the growth it lacked for silver (1,000): the ladder's own upgrade lifted it
    assert _tier(client, shop, a) == ("silver", 1_000)
    history = client.get(f"/api/v1/members/{a}/tier", headers=shop).json()["history"]
    assert history[0]["kind"] == "upgrade"
    event = _last_referral_event(database)
    assert event["referrer_growth"] == 1_000 and event["referrer_tier"] == "silver"
    assert set(event["coupons"]) == {"referrer", "referee"}
    with database.unit_of_work() as s:
        audit = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "referral.rewarded")
        ).one()
        assert audit.after["coupons"] == event["coupons"]
        reasons = set(s.scalars(select(Coupon.reason)))
    assert reasons == {"referral"}
    # a rerun issues nothing twice
    _run(client, shop)
    assert len(_wallet(client, shop, a)) == 1 and len(_wallet(client, shop, b)) == 1
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_a_clawback_takes_the_growth_back_and_voids_the_unused_coupons(
    client, shop, make_member, database, clock
):
    put_template(client, shop, "REF-A", THRESHOLD)
    _settings(
        database,
        clock,
        min_order_fen=20_000,
        referrer_coupon="REF-A",
        referee_coupon="REF-A",
        referrer_growth=400,
    )
    a, b = _referred_and_bought(client, shop, make_member)
    _run(client, shop)
    assert _tier(client, shop, a) == ("regular", 400)
    r = client.post(
        "/api/v1/orders/pos/O-b/returns", json={**RETURN, "external_id": "R-b"}, headers=shop
    )
    assert r.status_code == 201, r.text
    assert _run(client, shop)["clawed_back"] == 1
    assert _wallet(client, shop, a) == [("REF-A", "voided")]
    assert _wallet(client, shop, b) == [("REF-A", "voided")]
    assert _tier(client, shop, a) == ("regular", 0)
    event = _last_referral_event(database)
    assert event["status"] == "clawed_back"
    assert event["referrer_growth_clawed"] == 400 and len(event["coupons_voided"]) == 2
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_a_coupon_that_cannot_be_issued_leaves_the_points(
    client, shop, make_member, database, clock
):
    gold_only = {**THRESHOLD, "rules": {**THRESHOLD["rules"], "tiers": ["gold"]}}
    put_template(client, shop, "GOLD", gold_only)
    _settings(database, clock, referrer_coupon="GOLD")
    a, _ = _referred_and_bought(client, shop, make_member)
    assert _run(client, shop)["rewarded"] == 1
    assert _points(client, shop, a) == 500
    assert _wallet(client, shop, a) == []
    assert _last_referral_event(database)["coupons_refused"] == {"referrer": "wrong_tier"}
    with database.unit_of_work() as s:
        assert s.scalars(select(Referral.status)).all() == ["rewarded"]


def test_the_settings_api(client, shop, auth_headers, database):
    put_template(client, shop, "REF-A", THRESHOLD)
    assert client.get("/api/v1/referrals/settings", headers=shop).json()["referrer_points"] == 500
    body = {"referrer_points": 800, "referrer_coupon": "REF-A", "referrer_tier_up": True}
    r = client.put("/api/v1/referrals/settings", json=body, headers=shop)
    assert r.status_code == 200, r.text
    got = client.get("/api/v1/referrals/settings", headers=shop).json()
    assert got["referrer_points"] == 800 and got["referrer_coupon"] == "REF-A"
    assert got["referrer_tier_up"] is True

    r = client.put("/api/v1/campaigns/settings", json={"budget_cap_bp": 9_000}, headers=shop)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/campaigns/settings", headers=shop).json()["budget_cap_bp"] == 9_000

    with database.unit_of_work() as s:
        before = {
            k: dict(v) for k, v in s.execute(select(ProgramSetting.key, ProgramSetting.value))
        }
    bad = [
        (
            "/api/v1/referrals/settings",
            {"referee_coupon": "NOPE"},
            404,
            "coupon_template_not_found",
        ),
        ("/api/v1/referrals/settings", {"referrer_growth": -1}, 422, None),
        ("/api/v1/referrals/settings", {"max_per_referrer": 0}, 422, None),
        ("/api/v1/campaigns/settings", {"budget_cap_bp": 0}, 422, None),
        ("/api/v1/campaigns/settings", {"default_control_bp": 9_000}, 422, None),
    ]
    for path, payload, status, code in bad:
        r = client.put(path, json=payload, headers=shop)
        assert r.status_code == status, (payload, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    with database.unit_of_work() as s:
        after = {k: dict(v) for k, v in s.execute(select(ProgramSetting.key, ProgramSetting.value))}
    assert after == before
    # a clerk cannot change them
    r = client.put(
        "/api/v1/referrals/settings", json={"enabled": False}, headers=auth_headers("clerk")
    )
    assert r.status_code == 403


def test_a_campaign_cannot_take_a_reserved_code(client, shop):
    body = {"code": "settings", "name": "x", "schedule": {"kind": "last_weekend"}}
    r = client.post("/api/v1/campaigns", json=body, headers=shop)
    assert r.status_code == 422 and r.json()["error"]["code"] == "campaign_code_reserved"


def test_check_reports_reward_coupons_that_name_nothing_or_outlive_a_clawback(
    client, shop, make_member, database, clock
):
    put_template(client, shop, "REF-A", THRESHOLD)
    _settings(database, clock, min_order_fen=20_000, referee_coupon="REF-A")
    _referred_and_bought(client, shop, make_member)
    _run(client, shop)
    client.post(
        "/api/v1/orders/pos/O-b/returns", json={**RETURN, "external_id": "R-b"}, headers=shop
    )
    _run(client, shop)
    with database.unit_of_work() as s:
        assert run_all(s) == []
        s.execute(update(Coupon).values(status="issued"))  # as if the void had been skipped
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("still usable though referral" in v for v in found), found
    with database.unit_of_work() as s:
        s.execute(update(Coupon).values(issue_key="referral:999:referee"))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("names no rewarded referral" in v for v in found), found


def test_joined_after_out_of_range_is_refused(client, shop):
    for value in ("9999-12-31T23:59:59-23:59", "1999-12-31T23:59:59+00:00"):
        r = client.put("/api/v1/referrals/settings", json={"joined_after": value}, headers=shop)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["errors"][0]["type"] == "datetime_out_of_range"
    ok = client.put(
        "/api/v1/referrals/settings",
        json={"joined_after": "2026-03-01T00:00:00+08:00"},
        headers=shop,
    )
    assert ok.status_code == 200, ok.text


# The run that rewards one referral with both coupons and the tier-up: discovery, the two
# ledger locks, the points (with the referrer's growth and its upgrade), the two coupons
# (template lock, eligibility, quantity, coupon, history, event, audit record each), the
# referral's audit record and event.
RUN_BUDGET = {"sqlite": 69, "postgresql": 68}


def test_a_reward_with_coupons_and_the_tier_up_stays_within_its_statement_budget(
    client, shop, make_member, database, clock
):
    from tests.statements import count_statements

    put_template(client, shop, "REF-A", THRESHOLD)
    _settings(
        database, clock, referrer_coupon="REF-A", referee_coupon="REF-A", referrer_tier_up=True
    )
    a = make_member("13800000001")
    b = make_member("13700000002", referrer_member_no=a)
    assert _run(client, shop)["discovered"] == 1
    r = client.post("/api/v1/orders", json=order_body(b, ext="O-b"), headers=shop)
    assert r.status_code == 201, r.text
    with count_statements(database.engine) as log:
        assert _run(client, shop)["rewarded"] == 1
    budget = RUN_BUDGET[database.dialect]
    assert log.count <= budget, f"{log.count} statements > {budget}\n{log.report()}"
