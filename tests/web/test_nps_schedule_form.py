"""The console's form for the NPS survey schedule (SQLite and PostgreSQL): only a role that
configures the program opens it; bad values are shown next to their field and save nothing;
a good save keeps the other service settings, is audited, and the job follows it; a save made
after the page was opened is refused."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.service import domain, jobs
from tests.web.test_members_pages import _csrf, staff  # noqa: F401

PATH = "/console/service/nps/schedule"
GOOD = {
    "enabled": "on",
    "interval_days": "14",
    "sample": "2,000",
    "member_days": "60",
    "template": "",
}


def _errors(text: str) -> dict[str, str]:
    found = re.findall(r'data-error-for="([^"]+)">([^<]*)<', text)
    return {name: html.unescape(message) for name, message in found}


def _audits(database) -> list[AuditRecord]:
    with database.unit_of_work() as s:
        rows = list(
            s.scalars(
                select(AuditRecord).where(
                    AuditRecord.action == "settings.update",
                    AuditRecord.entity_id == domain.SECTION,
                )
            )
        )
        s.expunge_all()
    return rows


def test_only_configuring_roles_open_the_schedule(staff):  # noqa: F811
    clerk = staff("clerk")
    assert clerk.get(PATH).status_code == 403
    assert clerk.post(PATH, data={"csrf_token": "x", **GOOD}).status_code in (403, 422)
    analyst = staff("analyst")
    assert analyst.get(PATH).status_code == 403
    operator = staff("operator")
    page = operator.get(PATH)
    assert page.status_code == 200
    assert 'id="nps-schedule-form"' in page.text
    # the desk's tabs link to the schedule for a role that may change it, not for a reader
    assert f'href="{PATH}"' in operator.get("/console/service/nps").text


def test_bad_values_are_shown_in_the_form_and_save_nothing(
    client,
    auth_headers,
    database,
    staff,  # noqa: F811
):
    c = staff("operator")
    token = _csrf(c.get(PATH).text)
    cases = {
        "interval_days": ("0", "Must be at least 1."),
        "sample": ("100001", "Must be at most 100,000."),
        "member_days": ("ten", "Enter a whole number."),
        "template": ("nope", "Choose one of the options."),
    }
    for name, (typed, message) in cases.items():
        r = c.post(PATH, data={**GOOD, "csrf_token": token, name: typed})
        assert r.status_code == 422, name
        assert _errors(r.text) == {name: message}
        assert f'value="{typed}"' in r.text or name == "template"  # what was typed stays
    zh = c.post(
        PATH,
        data={**GOOD, "csrf_token": token, "sample": "0"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 422
    assert _errors(zh.text)["sample"] == "不能小于 1。"
    assert _audits(database) == []
    h = auth_headers("admin")
    assert client.get("/api/v1/service/settings", headers=h).json()["nps_schedule"] == {
        "enabled": False,
        "interval_days": 30,
        "sample": 500,
        "member_days": 90,
        "template": None,
    }


def test_a_save_keeps_the_other_settings_is_audited_and_drives_the_job(
    client,
    auth_headers,
    database,
    clock,
    make_member,
    staff,  # noqa: F811
):
    h = auth_headers("admin", fresh=True)
    settings = client.get("/api/v1/service/settings", headers=h).json()
    settings["vip_tiers"] = ["gold", "diamond"]
    assert client.put("/api/v1/service/settings", json=settings, headers=h).status_code == 200
    make_member(name="甲", consents={"sms": True})
    make_member(name="乙", consents={"sms": True})
    make_member(name="丙", consents={"sms": True})

    c = staff("operator")
    token = _csrf(c.get(PATH).text)
    r = c.post(PATH, data={**GOOD, "csrf_token": token, "sample": "2"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    saved = client.get("/api/v1/service/settings", headers=h).json()
    assert saved["nps_schedule"] == {
        "enabled": True,
        "interval_days": 14,
        "sample": 2,
        "member_days": 60,
        "template": None,
    }
    assert saved["vip_tiers"] == ["gold", "diamond"]  # the rest of the section is kept
    audits = _audits(database)
    assert len(audits) == 2  # the API's save, then the form's
    assert audits[-1].before["nps_schedule"]["enabled"] is False
    assert audits[-1].after["nps_schedule"]["interval_days"] == 14

    assert jobs.run_nps_surveys(database, clock.now(), base_url="https://m.example")["queued"] == 2
    page = c.get(PATH).text
    assert "checked" in page and 'value="14"' in page
    assert "Last round:" in page

    # a second save without a change writes no new audit record
    again = c.post(PATH, data={**GOOD, "csrf_token": token, "sample": "2"}, follow_redirects=False)
    assert again.status_code == 303
    assert len(_audits(database)) == 2


def test_a_save_made_after_the_page_was_opened_is_not_overwritten(
    database,
    staff,  # noqa: F811
):
    first, second = staff("operator"), staff("admin")
    page = first.get(PATH).text
    token = _csrf(page)
    version = re.search(r'name="version" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    other = second.get(PATH).text
    r = second.post(
        PATH, data={**GOOD, "csrf_token": _csrf(other), "version": version}, follow_redirects=False
    )
    assert r.status_code == 303
    stale = first.post(PATH, data={**GOOD, "csrf_token": token, "version": version, "sample": "7"})
    assert stale.status_code == 409
    assert "form" in _errors(stale.text)
    with database.unit_of_work() as s:
        n = s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.entity_id == domain.SECTION)
        )
    assert n == 1
