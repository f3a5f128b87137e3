"""Who may create points, how an order's points payment comes back, and whose sources are whose:
free-form earning needs points:grant and stays under its cap, growth never moves on the direct
earn API, adjustments have a daily limit per staff member, an order's spend is given back only by
its return (and ``patron check`` sees a spend given back twice), and API callers cannot write
under Patron's own sources (check-in, profile bonus, orders)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.checkin import service as checkin
from patron.errors import Conflict
from patron.kit.timeutil import business_date
from patron.ledger import flows, growth, queries
from patron.ledger import service as ledger
from patron.ledger.check import run_check
from patron.ledger.models import PointsAdjustment, PointsPosting
from patron.members import completion
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberUpdate
from tests.factories import order_body
from tests.portal.helpers import ACTOR, CIPHER, SH, ctx

#: what a POS integration is typically given: everything orders and checkout need
POS_SCOPES = (
    perm.MEMBERS_READ,
    perm.MEMBERS_WRITE,
    perm.POINTS_READ,
    perm.POINTS_WRITE,
    perm.TIERS_READ,
    perm.ORDERS_READ,
    perm.ORDERS_WRITE,
    perm.CATALOG_READ,
)


def _member_id(database, member_no):
    with database.unit_of_work() as s:
        return s.scalar(select(Member.id).where(Member.member_no == member_no))


def _state(database, clock, member_no):
    """(available points, growth) of a member."""
    mid = _member_id(database, member_no)
    with database.unit_of_work() as s:
        return queries.balance(s, mid, clock.now()).available, growth.balance(s, mid)[0]


def _grant(database, clock, member_no, points):
    with database.unit_of_work() as s:
        c = ledger.Ctx(Principal.system("t"), clock.now(), SH)
        flows.earn(
            s,
            c,
            _member_id(database, member_no),
            points=points,
            source_type="test",
            source_id=f"grant-{points}",
        )


def _earn(client, headers, no, points, **extra):
    body = {"points": points, "source_type": "goodwill", "source_id": "G-1", **extra}
    return client.post(f"/api/v1/members/{no}/points/earn", json=body, headers=headers)


# ---------------------------------------------------------------- 1. minting


def test_clerks_operators_and_pos_keys_cannot_mint_points_or_growth(
    client, auth_headers, api_key_headers, make_member, database, clock
):
    no = make_member()
    callers = {
        "clerk": auth_headers("clerk"),
        "operator": auth_headers("operator"),
        "pos key": api_key_headers(*POS_SCOPES),
    }
    for who, headers in callers.items():
        r = _earn(client, headers, no, 1_000_000, growth=1_000_000)
        assert r.status_code == 403, (who, r.text)
        assert r.json()["error"]["details"] == {"permission": "points:grant"}
    assert _state(database, clock, no) == (0, 0)
    tier = client.get(f"/api/v1/members/{no}/tier", headers=callers["clerk"])
    assert tier.json()["tier"] == "regular", tier.text


def test_a_granted_key_earns_within_the_cap_and_never_growth(
    client, auth_headers, api_key_headers, make_member, database, clock
):
    no = make_member()
    key = api_key_headers(perm.POINTS_GRANT, perm.POINTS_READ)
    over = _earn(client, key, no, 1_001)
    assert over.status_code == 422, over.text
    err = over.json()["error"]
    assert err["code"] == "earn_over_limit"
    assert err["details"] == {"field": "points", "limit": 1_000}
    assert "adjustment" in err["message"]
    grown = _earn(client, key, no, 10, growth=10)
    assert grown.status_code == 422
    assert grown.json()["error"]["code"] == "growth_not_allowed"
    assert _state(database, clock, no) == (0, 0)
    ok = _earn(client, key, no, 1_000)
    assert ok.status_code == 201, ok.text
    assert _state(database, clock, no) == (1_000, 0)
    # the cap is a validated setting
    admin = auth_headers("admin")
    current = client.get("/api/v1/points/settings", headers=admin).json()
    assert current["direct_earn_limit"] == 1_000
    assert current["adjustment_daily_limit"] == 20_000
    for bad in (-1, 1.5, "10", 10**10):
        r = client.put(
            "/api/v1/points/settings", json={**current, "direct_earn_limit": bad}, headers=admin
        )
        assert r.status_code == 422, (bad, r.text)
    r = client.put(
        "/api/v1/points/settings", json={**current, "direct_earn_limit": 5_000}, headers=admin
    )
    assert r.status_code == 200, r.text
    more = _earn(client, key, no, 5_000, source_id="G-2")
    assert more.status_code == 201, more.text


def test_a_pos_key_still_records_orders_that_pay_with_points(
    client, shop, api_key_headers, make_member, database, clock
):
    no = make_member()
    _grant(database, clock, no, 3_000)
    pos = api_key_headers(*POS_SCOPES)
    body = order_body(
        no,
        payments=[
            {"method": "points", "amount_fen": 2000, "points": 2000},
            {"method": "card", "amount_fen": 19900},
        ],
    )
    r = client.post("/api/v1/orders", json=body, headers=pos)
    assert r.status_code == 201, r.text
    assert r.json()["points_used"] == 2_000 and r.json()["growth_earned"] > 0


def test_the_approval_limit_holds_over_the_business_day(
    client, auth_headers, make_member, database, clock
):
    op = auth_headers("operator")
    a, b = make_member(), make_member()
    statuses = []
    for no in (a, b, a, b, a):
        r = client.post(
            f"/api/v1/members/{no}/points/adjustments",
            json={"amount": 10_000, "reason": "goodwill"},
            headers=op,
        )
        assert r.status_code == 201, r.text
        statuses.append(r.json()["status"])
    # the default daily limit (20,000) lets two of exactly the per-adjustment limit through
    assert statuses == ["applied"] * 2 + ["pending_approval"] * 3
    assert _state(database, clock, a)[0] == 10_000
    # growth is counted on its own; a removal counts by its size too
    r = client.post(
        f"/api/v1/members/{a}/points/adjustments",
        json={"ledger": "growth", "amount": 500, "reason": "goodwill"},
        headers=op,
    )
    assert r.json()["status"] == "applied"
    # another staff member has their own limit; tomorrow (Shanghai) starts afresh
    other = auth_headers("admin")
    r = client.post(
        f"/api/v1/members/{a}/points/adjustments",
        json={"amount": -5_000, "reason": "correction"},
        headers=other,
    )
    assert r.json()["status"] == "applied"
    clock.advance(timedelta(hours=14))  # 2026-03-02 00:00 in Shanghai
    r = client.post(
        f"/api/v1/members/{b}/points/adjustments",
        json={"amount": 10_000, "reason": "goodwill"},
        headers=auth_headers("operator", fresh=True),
    )
    assert r.json()["status"] == "applied", r.text
    with database.unit_of_work() as s:
        pending = s.scalars(
            select(PointsAdjustment.amount).where(PointsAdjustment.status == "pending_approval")
        ).all()
        assert pending == [10_000] * 3
        assert run_check(s) == []


def test_console_adjustments_share_the_daily_limit(database, clock):
    """The console calls the same flow with the staff member as actor."""
    staff = Principal(kind="staff", id=7, label="op", role="operator")
    with database.unit_of_work() as s:
        from tests.portal.helpers import new_member

        mid = new_member(s, clock.now()).id
    done = []
    for _ in range(3):
        with database.unit_of_work() as s:
            c = ledger.Ctx(staff, clock.now(), SH, ledger.get_points_settings(s))
            row = flows.request_adjustment(
                s, c, mid, ledger="points", amount=8_000, reason="console"
            )
            done.append(row.status)
    assert done == ["applied", "applied", "pending_approval"]


# ---------------------------------------------------------------- 2. an order's points payment


def _order_paying_5000(client, shop, database, clock, no):
    _grant(database, clock, no, 6_000)
    body = order_body(
        no,
        payments=[
            {"method": "points", "amount_fen": 5000, "points": 5000},
            {"method": "card", "amount_fen": 16900},
        ],
    )
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        return s.scalar(
            select(PointsPosting.id).where(
                PointsPosting.kind == "redeem", PointsPosting.source_id == "pos:O-1"
            )
        )


def _return_all(client, shop):
    return client.post(
        "/api/v1/orders/pos/O-1/returns",
        json={
            "external_id": "R-1",
            "returned_at": "2026-03-01T12:00:00+08:00",
            "lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 2}],
        },
        headers=shop,
    )


def test_an_orders_points_payment_comes_back_only_with_its_return(
    client, shop, auth_headers, make_member, database, clock
):
    no = make_member()
    spend_id = _order_paying_5000(client, shop, database, clock, no)
    before = _state(database, clock, no)[0]
    for headers in (shop, auth_headers("admin")):
        r = client.post(f"/api/v1/members/{no}/points/spends/{spend_id}/cancel", headers=headers)
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "spend_belongs_to_order"
        assert "return the order" in err["message"]
    assert _state(database, clock, no)[0] == before
    r = _return_all(client, shop)
    assert r.status_code == 201, r.text
    assert r.json()["points_returned"] == 5_000
    # back to the 6,000 the member had: the payment came back once, the earning was clawed back
    assert _state(database, clock, no)[0] == 6_000
    mid = _member_id(database, no)
    with database.unit_of_work() as s:
        back = s.scalars(
            select(PointsPosting.available_delta).where(PointsPosting.restores_id == spend_id)
        ).all()
        assert back == [5_000]
        assert run_check(s, now=clock.now()) == []
        # the ledger itself refuses to give the payment back a second time
        c = ledger.Ctx(Principal.system("t"), clock.now(), SH)
        with pytest.raises(Conflict) as again:
            flows.earn(
                s,
                c,
                mid,
                points=1,
                source_type="order_return",
                source_id="pos:O-1:again",
                restores_id=spend_id,
            )
        assert again.value.code == "reversal_exceeds_spend"


def test_patron_check_reports_a_spend_given_back_twice(client, shop, make_member, database, clock):
    no = make_member()
    spend_id = _order_paying_5000(client, shop, database, clock, no)
    assert _return_all(client, shop).status_code == 201
    mid = _member_id(database, no)
    with database.unit_of_work() as s:
        assert run_check(s, now=clock.now()) == []
        # what the cancel endpoint used to do after the return, written past the services
        s.execute(
            insert(PointsPosting).values(
                member_id=mid,
                kind="reversal",
                available_delta=5_000,
                pending_delta=0,
                debt_delta=0,
                reason="tampered",
                source_type="order",
                source_id="pos:O-1",
                idempotency_key=f"reversal:{spend_id}",
                reverses_id=spend_id,
                actor="tests",
                created_at=clock.now(),
            )
        )
    with database.unit_of_work() as s:
        found = run_check(s, now=clock.now())
    twice = [v for v in found if "given back" in v]
    assert twice == [
        f"posting {spend_id} (redeem, member {mid}) of 5000 points was given back 10000 points "
        "(cancellation and returns together)"
    ]


# ---------------------------------------------------------------- 3. sources


def test_api_earnings_cannot_block_the_check_in_or_the_profile_bonus(
    client, auth_headers, make_member, database, clock
):
    admin = auth_headers("admin")
    no = make_member(name="Li")
    mid = _member_id(database, no)
    today = business_date(clock.now(), SH)
    mine = (("checkin", f"{mid}:{today.isoformat()}"), ("profile", f"completion:{mid}"))
    for source_type, source_id in mine:
        r = _earn(client, admin, no, 1, source_type=source_type, source_id=source_id)
        assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        reward = checkin.check_in(s, ctx(s, clock.now()), mid)
        assert reward.total > 0
    with database.unit_of_work() as s:
        me = s.get(Member, mid)
        assert not completion.already_awarded(s, mid)
        members.update_profile(
            s,
            ACTOR,
            CIPHER,
            no,
            MemberUpdate(
                email="li@example.com", birthday="1990-05-01", gender="female", city="Shanghai"
            ),
            now=clock.now(),
            tz=SH,
        )
        assert completion.award_if_complete(s, ctx(s, clock.now()), CIPHER, me) == 200
    with database.unit_of_work() as s:
        assert queries.balance(s, mid, clock.now()).available == 2 + reward.total + 200
        kinds = s.scalars(
            select(PointsPosting.source_type).where(PointsPosting.member_id == mid)
        ).all()
        assert sorted(kinds) == ["api:checkin", "api:profile", "checkin", "profile"]


def test_api_callers_cannot_touch_an_orders_points(
    client, shop, auth_headers, make_member, database, clock
):
    """An earning named "order" by the API is the caller's own; the order still earns, and an
    API refund of "order" cannot claw back what a recorded order earned."""
    no = make_member()
    admin = auth_headers("admin")
    r = _earn(client, admin, no, 5, source_type="order", source_id="pos:O-1")
    assert r.status_code == 201
    r = client.post("/api/v1/orders", json=order_body(no), headers=shop)
    assert r.status_code == 201, r.text
    earned = r.json()["points_earned"]
    assert earned > 0
    assert _state(database, clock, no)[0] == 5 + earned
    r = client.post(
        f"/api/v1/members/{no}/points/refunds",
        json={
            "source_type": "order",
            "source_id": "pos:O-1",
            "refund_id": "R-1",
            "order_total_fen": 21_900,
            "refund_amount_fen": 21_900,
        },
        headers=shop,
    )
    assert r.status_code == 201, r.text
    assert r.json()["points_clawed"] == 5  # the caller's own earning, not the order's
    assert _state(database, clock, no)[0] == earned
    with database.unit_of_work() as s:
        assert run_check(s, now=clock.now()) == []


def test_direct_earnings_share_the_daily_limit_per_caller(
    client, api_key_headers, make_member, database, clock
):
    # 21 earnings of exactly the cap, each under it, minted 21,000 points in one day
    key = api_key_headers(perm.POINTS_GRANT, perm.POINTS_READ)
    a, b = make_member(), make_member()
    codes = []
    for n in range(21):
        r = _earn(client, key, (a, b)[n % 2], 1_000, source_id=f"G-{n}")
        codes.append(r.status_code)
    assert codes == [201] * 20 + [422]
    over = _earn(client, key, a, 1, source_id="G-99")
    assert over.status_code == 422, over.text
    err = over.json()["error"]
    assert err["code"] == "earn_over_limit"
    assert err["details"] == {"field": "points", "limit": 20_000, "per": "day"}
    # a replay of an earning already made still answers with it
    again = _earn(client, key, a, 1_000, source_id="G-0")
    assert again.status_code in (200, 201), again.text
    assert _state(database, clock, a)[0] + _state(database, clock, b)[0] == 20_000
    # another caller has their own limit; the next business day (Shanghai) starts afresh
    other = api_key_headers(perm.POINTS_GRANT)
    assert _earn(client, other, a, 1_000, source_id="O-1").status_code == 201
    clock.advance(timedelta(hours=14))
    assert _earn(client, key, b, 1_000, source_id="G-100").status_code == 201
