"""Points milestones: unlocked by lifetime points earned, never locked again by spending."""

from __future__ import annotations

from patron.campaigns import milestones
from patron.campaigns.milestones import MilestoneSettings
from patron.ledger import flows
from tests.portal.helpers import ctx, new_member


def test_progress_by_lifetime_points():
    s = MilestoneSettings()
    assert milestones.progress(0, s).to_next == 10_000
    p = milestones.progress(12_000, s)
    assert [m.code for m in p.unlocked] == ["dedicated_service"]
    assert p.next is not None and p.next.code == "early_access" and p.to_next == 18_000
    assert milestones.progress(30_000, s).next is None


def test_spending_keeps_a_milestone(database, clock):
    with database.unit_of_work() as s:
        mid = new_member(s, clock.now()).id
        c = ctx(s, clock.now())
        flows.earn(s, c, mid, points=10_000, source_type="test", source_id="a")
        flows.spend(s, c, mid, points=9_000, source_type="test", source_id="b")
        assert [m.code for m in milestones.member_progress(s, mid).unlocked] == [
            "dedicated_service"
        ]


def test_milestones_api(client, shop, make_member):
    no = make_member()
    r = client.get(f"/api/v1/members/{no}/milestones", headers=shop)
    assert r.status_code == 200, r.text
    assert r.json()["unlocked"] == [] and r.json()["to_next"] == 10_000
    assert client.get("/api/v1/members/0000000000/milestones", headers=shop).status_code == 404
