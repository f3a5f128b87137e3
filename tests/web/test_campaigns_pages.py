"""Campaign console pages without a browser (SQLite and PostgreSQL): a preview of reach and
maximum cost writes nothing, a draft is saved and started, bad input is refused with 422."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.campaigns.models import Campaign
from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture

FORM = {
    "code": "double",
    "name": "Double points week",
    "kind": "one_off",
    "start": "2026-03-02",
    "end": "2026-03-08",
    "multiplier": "2",
    "budget_yuan": "100",
    "control_percent": "10",
}


def _count(database):
    with database.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(Campaign))


def test_preview_then_save_then_start(client, database, operator):  # noqa: F811
    page = client.get("/console/campaigns")
    assert page.status_code == 200 and "No campaigns yet." in page.text
    preview = client.post(
        "/console/campaigns", data={**FORM, "action": "preview", "csrf_token": operator}
    )
    assert preview.status_code == 200
    assert "This campaign reaches 0 members (0 held out as the control group)" in preview.text
    assert "costs at most ¥95.00" in preview.text
    assert _count(database) == 0
    saved = client.post(
        "/console/campaigns",
        data={**FORM, "action": "create", "csrf_token": operator},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert _count(database) == 1
    started = client.post(
        "/console/campaigns/double/status",
        data={
            "status": "active",
            "csrf_token": _csrf(client.get("/console/campaigns/double").text),
        },
    )
    assert started.status_code == 200 and "Results" in started.text
    bad = client.post(
        "/console/campaigns",
        data={
            **FORM,
            "code": "other",
            "budget_yuan": "",
            "action": "create",
            "csrf_token": operator,
        },
    )
    assert bad.status_code == 422 and "a budget for a multiplier" in bad.text
    assert _count(database) == 1
