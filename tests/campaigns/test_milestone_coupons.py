"""A milestone's coupon: given set-based to every member past the milestone, once each however
often the job runs; the settings through the API, refused whole on bad input."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.campaigns import jobs
from patron.coupons.models import Coupon
from patron.ledger import flows
from patron.program.models import ProgramSetting
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.portal.helpers import SH, ctx, new_member

SETTINGS = {
    "milestones": [
        {
            "code": "dedicated_service",
            "name": "Dedicated service",
            "points": 10_000,
            "coupon": "M10K",
        },
        {"code": "early_access", "name": "Early access", "points": 30_000},
    ]
}


def _earn(database, clock, member_id, points, ref):
    with database.unit_of_work() as s:
        flows.earn(
            s, ctx(s, clock.now()), member_id, points=points, source_type="test", source_id=ref
        )


def _batches(database):
    with database.unit_of_work() as s:
        return s.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "coupon.issue_batch")
        )


def _given(database):
    with database.unit_of_work() as s:
        return s.execute(
            select(Coupon.member_id, Coupon.reason, Coupon.issue_key).order_by(Coupon.member_id)
        ).all()


def test_each_member_past_the_milestone_gets_its_coupon_once(client, shop, database, clock):
    put_template(client, shop, "M10K", THRESHOLD)
    r = client.put("/api/v1/campaigns/milestones", json=SETTINGS, headers=shop)
    assert r.status_code == 200, r.text
    with database.unit_of_work() as s:
        ids = [new_member(s, clock.now(), phone=f"1390000100{i}").id for i in range(3)]
    _earn(database, clock, ids[0], 12_000, "a")
    _earn(database, clock, ids[1], 9_999, "b")
    run = client.post("/api/v1/campaigns/milestones/run", headers=shop)
    assert run.status_code == 200 and run.json() == {"dedicated_service": 1}
    assert _given(database) == [(ids[0], "milestone", "milestone:dedicated_service")]
    audits = _batches(database)
    assert client.post("/api/v1/campaigns/milestones/run", headers=shop).json() == {
        "dedicated_service": 0
    }
    assert _batches(database) == audits  # a run that finds nobody new writes nothing
    # spending does not matter, earning past the line does: the job gives it next time
    _earn(database, clock, ids[1], 1, "c")
    assert jobs.run_milestone_coupons(database, clock.now(), SH) == {"dedicated_service": 1}
    assert [row[0] for row in _given(database)] == ids[:2]


def test_bad_milestone_settings_change_nothing(client, shop, database):
    before = client.get("/api/v1/campaigns/milestones", headers=shop).json()
    assert [m["code"] for m in before["milestones"]] == ["dedicated_service", "early_access"]
    r = client.put("/api/v1/campaigns/milestones", json=SETTINGS, headers=shop)  # no M10K yet
    assert r.status_code == 404 and r.json()["error"]["code"] == "coupon_template_not_found"
    twice = {"milestones": [SETTINGS["milestones"][1], SETTINGS["milestones"][1]]}
    r = client.put("/api/v1/campaigns/milestones", json=twice, headers=shop)
    assert r.status_code == 422
    with database.unit_of_work() as s:
        assert s.get(ProgramSetting, "milestones") is None
    assert client.get("/api/v1/campaigns/milestones", headers=shop).json() == before
