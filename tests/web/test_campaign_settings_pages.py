"""The console's campaign and referral settings: each field's error shown beside it, nothing
saved on bad input, a save the API then reads, and a stale page refused."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.program.models import ProgramSetting
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.web.test_config_pages import (  # noqa: F401 - the fixture
    _csrf,
    _error,
    _errors,
    _sign_in,
    operator,
)

REFERRAL = {
    "enabled": "on",
    "joined_after": "",
    "min_order": "50.00",
    "referrer_points": "800",
    "referee_points": "300",
    "referrer_coupon": "WELCOME-REF",
    "referee_coupon": "",
    "referrer_growth": "100",
    "referrer_tier_up": "on",
    "max_per_referrer": "10",
    "burst_limit": "4",
    "burst_hours": "12",
    "prefix_digits": "7",
}


def _saved(database):
    with database.unit_of_work() as s:
        rows = dict(s.execute(select(ProgramSetting.key, ProgramSetting.version)).all())
        audits = s.scalar(select(func.count()).select_from(AuditRecord))
    return rows, audits


def test_campaign_settings_saved_and_refused(client, auth_headers, database, operator):  # noqa: F811
    page = client.get("/console/campaign-settings")
    assert page.status_code == 200
    assert 'value="95"' in page.text and 'value="1.00"' in page.text
    form = {"budget_cap": "90", "point_cost": "1.50", "default_control": "10", "version": "0"}
    before = _saved(database)
    bad = client.post(
        "/console/campaign-settings",
        data={
            **form,
            "budget_cap": "0",
            "default_control": "60",
            "point_cost": "x",
            "csrf_token": operator,
        },
    )
    assert bad.status_code == 422
    assert _errors(bad.text) >= {"budget_cap", "default_control", "point_cost"}
    assert _error(bad.text, "default_control") == "Must be at most 50%."
    assert _error(bad.text, "point_cost") == "Enter an amount in yuan with at most 2 decimals."
    assert 'value="60"' in bad.text  # what was typed is shown again
    assert _saved(database) == before  # nothing written, not even an audit record
    ok = client.post(
        "/console/campaign-settings", data={**form, "csrf_token": operator}, follow_redirects=False
    )
    assert ok.status_code == 303
    got = client.get("/api/v1/campaigns/settings", headers=auth_headers("operator")).json()
    assert got == {
        "budget_cap_bp": 9_000,
        "point_cost_fen_per_100": 150,
        "default_control_bp": 1_000,
    }
    # the page was opened at version 0; a second save from it is stale
    stale = client.post("/console/campaign-settings", data={**form, "csrf_token": operator})
    assert stale.status_code == 409 and _errors(stale.text) == {"form"}


def test_referral_settings_saved_and_refused(client, auth_headers, database, operator):  # noqa: F811
    h = auth_headers("operator")
    put_template(client, h, "WELCOME-REF", {**THRESHOLD, "name": "推荐礼券"})
    page = client.get("/console/referral-settings")
    assert page.status_code == 200 and "推荐礼券 · WELCOME-REF" in page.text
    before = _saved(database)
    bad = client.post(
        "/console/referral-settings",
        data={
            **REFERRAL,
            "referee_coupon": "NOPE",
            "max_per_referrer": "0",
            "referrer_growth": "-5",
            "prefix_digits": "seven",
            "joined_after": "2026-02-30",
            "csrf_token": operator,
        },
    )
    assert bad.status_code == 422
    assert _error(bad.text, "max_per_referrer") == "Must be at least 1."
    assert _error(bad.text, "referrer_growth") == "Must be at least 0."
    assert _error(bad.text, "prefix_digits") == "Enter a whole number."
    assert _error(bad.text, "joined_after") == "Enter a date as YYYY-MM-DD."
    assert _saved(database) == before
    # every value valid but a coupon that does not exist: refused beside its field
    missing = client.post(
        "/console/referral-settings",
        data={**REFERRAL, "referee_coupon": "NOPE", "csrf_token": operator},
    )
    assert missing.status_code == 422
    assert _errors(missing.text) == {"referee_coupon"}
    assert _error(missing.text, "referee_coupon") == "No coupon template has this code."
    assert _saved(database) == before
    ok = client.post(
        "/console/referral-settings",
        data={**REFERRAL, "joined_after": "2026-03-01", "csrf_token": operator},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    got = client.get("/api/v1/referrals/settings", headers=h).json()
    assert got["referrer_points"] == 800 and got["referee_points"] == 300
    assert got["referrer_coupon"] == "WELCOME-REF" and got["referee_coupon"] is None
    assert got["referrer_growth"] == 100 and got["referrer_tier_up"] is True
    assert got["min_order_fen"] == 5_000 and got["burst_hours"] == 12
    # the start of the business day (Asia/Shanghai) in UTC
    assert got["joined_after"].startswith("2026-02-28T16:00:00")
    with database.unit_of_work() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.action == "settings.update", AuditRecord.entity_id == "referral")
            )
            == 1
        )
    again = client.get("/console/referral-settings").text
    assert 'value="2026-03-01"' in again and 'value="WELCOME-REF" selected' in again


def test_a_reader_sees_the_settings_but_cannot_save(client, database, clock):
    token = _sign_in(client, database, clock, "analyst")
    page = client.get("/console/referral-settings")
    assert page.status_code == 200 and 'id="save"' not in page.text
    r = client.post("/console/referral-settings", data={**REFERRAL, "csrf_token": token})
    assert r.status_code == 403


def _milestone_form(token, **rows):
    form = {"csrf_token": token, "version": "0"}
    for i, (code, name, points, benefit, coupon) in rows.items():
        form |= {
            f"ms-{i}-code": code,
            f"ms-{i}-name": name,
            f"ms-{i}-points": points,
            f"ms-{i}-benefit": benefit,
            f"ms-{i}-coupon": coupon,
        }
    return form


def test_milestones_saved_and_refused(client, auth_headers, database, operator):  # noqa: F811
    h = auth_headers("operator")
    put_template(client, h, "M10K", {**THRESHOLD, "name": "万分礼券"})
    page = client.get("/console/milestones")
    assert page.status_code == 200
    assert 'value="dedicated_service"' in page.text and 'value="30000"' in page.text
    before = _saved(database)
    bad = client.post(
        "/console/milestones",
        data=_milestone_form(
            operator,
            **{
                "0": ("vip", "VIP", "10000", "A personal adviser", "M10K"),
                "1": ("vip", "Again", "20000", "", ""),
                "2": ("gold_club", "Gold club", "lots", "", ""),
                "3": ("", "", "", "", ""),
            },
        ),
    )
    assert bad.status_code == 422
    assert _error(bad.text, "ms-2-points") == "Enter a whole number."
    assert _saved(database) == before
    dup = client.post(
        "/console/milestones",
        data=_milestone_form(
            operator,
            **{
                "0": ("vip", "VIP", "10000", "", "M10K"),
                "1": ("vip", "Again", "20000", "", ""),
            },
        ),
    )
    assert dup.status_code == 422 and _errors(dup.text) == {"ms-1-code"}
    assert _error(dup.text, "ms-1-code") == "Another milestone has this code."
    missing = client.post(
        "/console/milestones",
        data=_milestone_form(operator, **{"0": ("vip", "VIP", "10000", "", "NOPE")}),
    )
    assert missing.status_code == 422 and _errors(missing.text) == {"ms-0-coupon"}
    assert _saved(database) == before
    ok = client.post(
        "/console/milestones",
        data=_milestone_form(
            operator,
            **{
                "0": ("vip", "VIP", "10000", "A personal adviser", "M10K"),
                "1": ("", "", "", "", ""),
                "2": ("club", "Club", "50000", "", ""),
            },
        ),
        follow_redirects=False,
    )
    assert ok.status_code == 303
    got = client.get("/api/v1/campaigns/milestones", headers=h).json()["milestones"]
    assert [(m["code"], m["points"], m["coupon"]) for m in got] == [
        ("vip", 10_000, "M10K"),
        ("club", 50_000, None),
    ]
    assert 'value="M10K" selected' in client.get("/console/milestones").text
