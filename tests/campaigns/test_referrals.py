"""Referral: rewards after the referee's first qualifying order, abuse limits, clawback."""

from __future__ import annotations

from sqlalchemy import select, update

from patron.auth.principal import Principal
from patron.campaigns.domain import REFERRAL_SECTION, ReferralSettings
from patron.campaigns.models import Referral
from patron.checks import run_all
from patron.members.models import Member
from patron.program import service as program
from tests.factories import order_body


def _settings(database, clock, **values):
    with database.unit_of_work() as s:
        program.put_section(
            s, Principal.system("t"), REFERRAL_SECTION, ReferralSettings(**values), now=clock.now()
        )


def _run(client, h):
    r = client.post("/api/v1/referrals/run", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def _points(client, h, no):
    return client.get(f"/api/v1/members/{no}/points", headers=h).json()["available"]


def _statuses(database):
    with database.unit_of_work() as s:
        return [(r.status, r.reason) for r in s.scalars(select(Referral).order_by(Referral.id))]


def test_both_sides_earn_after_the_first_order_not_on_sign_up(client, shop, make_member, database):
    a = make_member("13800000001")
    code = client.get(f"/api/v1/referrals/codes/{a}", headers=shop).json()
    assert code["link"].endswith(code["code"])
    b = make_member("13700000002", referrer_member_no=a)
    assert _run(client, shop) == {"discovered": 1, "rewarded": 0, "clawed_back": 0}
    assert _points(client, shop, a) == 0  # signing up earns nothing
    assert client.post("/api/v1/orders", json=order_body(b), headers=shop).status_code == 201
    before = _points(client, shop, b)
    assert _run(client, shop)["rewarded"] == 1
    assert _points(client, shop, a) == 500
    assert _points(client, shop, b) == before + 200
    assert _run(client, shop) == {"discovered": 0, "rewarded": 0, "clawed_back": 0}
    assert _statuses(database) == [("rewarded", None)]
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_self_referral_is_refused_and_bursts_are_held(client, shop, make_member, database, clock):
    _settings(database, clock, burst_limit=2)
    a = make_member("13800000001")
    # a referee who referred their own referrer (an import can set both): self-referral
    b = make_member("13700000002", referrer_member_no=a)
    with database.unit_of_work() as s:
        bid = s.scalar(select(Member.id).where(Member.member_no == b))
        s.execute(update(Member).where(Member.member_no == a).values(referrer_member_id=bid))
    for i in range(3):  # three referees with phones 139 0000 …: the third is a burst
        make_member(f"1390000{i:04d}", referrer_member_no=a)
    _run(client, shop)
    assert _statuses(database) == [
        ("refused", "self_referral"),
        ("refused", "self_referral"),
        ("pending", None),
        ("pending", None),
        ("held", "phone_prefix_burst"),
    ]
    held = client.get("/api/v1/referrals?status=held", headers=shop).json()
    r = client.post(
        f"/api/v1/referrals/{held[0]['id']}/decision", json={"approve": True}, headers=shop
    )
    assert r.json()["status"] == "pending"
    again = client.post(
        f"/api/v1/referrals/{held[0]['id']}/decision", json={"approve": False}, headers=shop
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "referral_not_held"


def test_the_cap_per_referrer(client, shop, make_member, database, clock):
    _settings(database, clock, max_per_referrer=1)
    a = make_member("13800000001")
    for i, phone in enumerate(("13700000002", "13600000003")):
        no = make_member(phone, referrer_member_no=a)
        client.post("/api/v1/orders", json=order_body(no, ext=f"O-{i}"), headers=shop)
    assert _run(client, shop)["rewarded"] == 1
    assert _statuses(database) == [("rewarded", None), ("refused", "referrer_cap")]
    assert _points(client, shop, a) == 500


def test_a_refunded_qualifying_order_refuses_or_claws_back(
    client, shop, make_member, database, clock
):
    _settings(database, clock, min_order_fen=20_000)
    a = make_member("13800000001")
    b = make_member("13700000002", referrer_member_no=a)
    c = make_member("13600000003", referrer_member_no=a)
    for no in (b, c):
        client.post("/api/v1/orders", json=order_body(no, ext=f"O-{no}"), headers=shop)
    ret = {"returned_at": "2026-03-01T12:00:00+08:00", "lines": [{"line_no": 1, "quantity": 1}]}
    # c returns before the referral is looked at: refused
    r = client.post(
        f"/api/v1/orders/pos/O-{c}/returns", json={**ret, "external_id": "R-c"}, headers=shop
    )
    assert r.status_code == 201, r.text
    _run(client, shop)
    assert _statuses(database) == [("rewarded", None), ("refused", "refunded")]
    # b returns after the reward: both rewards are clawed back
    client.post(
        f"/api/v1/orders/pos/O-{b}/returns", json={**ret, "external_id": "R-b"}, headers=shop
    )
    assert _run(client, shop)["clawed_back"] == 1
    assert _statuses(database)[0] == ("clawed_back", "refunded")
    assert _points(client, shop, a) == 0
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_check_reports_a_reward_missing_from_the_ledger(client, shop, make_member, database):
    a = make_member("13800000001")
    b = make_member("13700000002", referrer_member_no=a)
    client.post("/api/v1/orders", json=order_body(b), headers=shop)
    _run(client, shop)
    with database.unit_of_work() as s:
        s.execute(update(Referral).values(referrer_points=900))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("records 900 points for the referrer" in v for v in found), found


def test_switched_off_or_before_joined_after_nothing_happens(
    client, shop, make_member, database, clock
):
    from datetime import timedelta

    a = make_member("13800000001")
    make_member("13700000002", referrer_member_no=a)
    _settings(database, clock, enabled=False)
    assert _run(client, shop) == {"discovered": 0, "rewarded": 0, "clawed_back": 0}
    _settings(database, clock, joined_after=clock.now() + timedelta(seconds=1))
    assert _run(client, shop)["discovered"] == 0
    _settings(database, clock, joined_after=clock.now())
    assert _run(client, shop)["discovered"] == 1
