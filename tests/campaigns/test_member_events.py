"""Member events: capacity, waiting list and promotion, points, check-in, no-shows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from patron.campaigns.models import MemberEvent
from patron.checks import run_all
from patron.ledger import flows
from tests.portal.helpers import ctx

EVENT = {
    "code": "salon",
    "name": "VIP salon",
    "starts_at": "2026-03-08T10:00:00+08:00",
    "capacity": 2,
    "points_cost": 100,
}


def _grant(database, clock, no, points):
    from sqlalchemy import select

    from patron.members.models import Member

    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        flows.earn(s, ctx(s, clock.now()), mid, points=points, source_type="test", source_id=no)


def test_capacity_waiting_list_points_checkin_and_no_shows(
    client, shop, make_member, database, clock, auth_headers
):
    assert client.post("/api/v1/member-events", json=EVENT, headers=shop).status_code == 201
    nos = [make_member() for _ in range(4)]
    for no in nos:
        _grant(database, clock, no, 150)
    regs = [
        client.post(
            "/api/v1/member-events/salon/registrations", json={"member_no": no}, headers=shop
        ).json()
        for no in nos
    ]
    assert [r["status"] for r in regs] == ["registered", "registered", "waitlisted", "waitlisted"]
    again = client.post(
        "/api/v1/member-events/salon/registrations", json={"member_no": nos[0]}, headers=shop
    )
    assert again.json()["replayed"] is True
    balance = client.get(f"/api/v1/members/{nos[0]}/points", headers=shop).json()["available"]
    assert balance == 50
    # a place frees: the first on the waiting list moves up; the canceller's points come back
    r = client.post(
        "/api/v1/member-events/salon/registrations/cancel", json={"member_no": nos[1]}, headers=shop
    )
    assert r.json()["status"] == "cancelled"
    assert client.get(f"/api/v1/members/{nos[1]}/points", headers=shop).json()["available"] == 150
    event = client.get("/api/v1/member-events/salon", headers=shop).json()
    assert (event["registered"], event["waitlisted"]) == (2, 1)
    # a member without the points is refused and nothing is written
    poor = make_member()
    refused = client.post(
        "/api/v1/member-events/salon/registrations", json={"member_no": poor}, headers=shop
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "insufficient_points"
    # at the door: nos[0] checks in; nos[2] (promoted) does not come
    clock.set(datetime(2026, 3, 8, 2, 30, tzinfo=UTC))
    h = auth_headers("operator", fresh=True)
    ok = client.post(
        "/api/v1/member-events/salon/checkin",
        json={"checkin_code": regs[0]["checkin_code"]},
        headers=h,
    )
    assert ok.json()["status"] == "attended"
    late = client.post(
        "/api/v1/member-events/salon/registrations", json={"member_no": poor}, headers=h
    )
    assert late.json()["error"]["code"] == "event_closed"
    assert client.post("/api/v1/member-events/salon/close", headers=h).json() == {"no_shows": 1}
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_check_reports_an_event_past_its_capacity(client, shop, make_member, database):
    client.post("/api/v1/member-events", json={**EVENT, "points_cost": 0}, headers=shop)
    no = make_member()
    client.post("/api/v1/member-events/salon/registrations", json={"member_no": no}, headers=shop)
    with database.unit_of_work() as s:
        s.execute(update(MemberEvent).values(capacity=0, registered=3))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("more than its capacity of 0" in v for v in found), found
    assert any("counts 3 places" in v for v in found), found


def test_an_event_time_without_a_timezone_is_refused(client, shop):
    r = client.post(
        "/api/v1/member-events", json={**EVENT, "starts_at": "2026-03-08T10:00:00"}, headers=shop
    )
    assert r.status_code == 422
