"""Risk review of earning (SQLite and PostgreSQL): the hourly pass flags orders and manual
credits after the fact — at the rules' boundaries and not below them —, a rerun opens nothing
twice, rejecting takes the points back once (``patron check`` stays clean), the console names
the order in English and Chinese, and the rules' precision on seeded earning fraud."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from patron import checks
from patron.audit.models import AuditRecord
from patron.demo import fraud
from patron.ledger.models import PointsAdjustment, PointsPosting
from patron.members.models import Member, MemberTag, Tag
from patron.orders.models import Order
from patron.program.models import ProgramSetting
from patron.risk import domain, earning, jobs
from patron.risk.models import RiskReview
from patron.web.console import history_text
from patron.webhooks.models import WebhookEvent
from tests.factories import order_body
from tests.web.test_config_pages import operator  # noqa: F401 - the fixture

QUIET = {  # every earning rule out of the way unless a test sets it
    "earn_member_per_hour": 1000,
    "earn_store_members": 100_000,
    "earn_new_member_points": 10**9,
    "earn_return_points": 10**9,
    "unusual_adjust_points": 10**9,
}


def _limits(client: Any, admin: dict[str, str], **over: Any) -> None:
    now = client.get("/api/v1/risk/settings", headers=admin).json()
    r = client.put("/api/v1/risk/settings", json={**now, **QUIET, **over}, headers=admin)
    assert r.status_code == 200, r.text


def _order(client: Any, shop: dict[str, str], no: str, ext: str, at: Any, **over: Any) -> int:
    body = order_body(no, ext, ordered_at=at.isoformat(), **over)
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text
    assert r.json()["points_earned"] > 0
    return int(r.json()["points_earned"])


def _reviews(database: Any) -> dict[str, RiskReview]:
    with database.unit_of_work() as s:
        rows = s.scalars(select(RiskReview).where(RiskReview.action == "earning")).all()
        s.expunge_all()
    return {r.subject: r for r in rows}


def _order_id(database: Any, ext: str) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(Order.id).where(Order.external_id == ext)))


def test_window_counts_orders_beyond_the_limit_and_bursts_of_members():
    at = [0, 600, 1200, 3599, 3600 + 1200]
    stamps = [domain.Stamp(i, 7, 7, float(t)) for i, t in enumerate(at)]
    # 0, 600, 1200, 3599 fall within one hour: the fourth is beyond a limit of 3
    assert domain.over_in_window(stamps, 3600, 3, distinct=False) == {3}
    assert domain.over_in_window(stamps, 3600, 4, distinct=False) == set()
    # an order exactly an hour after the first: the first is no longer within the hour
    hour_later = [*stamps[:3], domain.Stamp(9, 7, 7, 3600.0)]
    assert domain.over_in_window(hour_later, 3600, 3, distinct=False) == set()
    store = [domain.Stamp(i, "SH", m, float(t)) for i, (m, t) in enumerate(
        [(1, 0), (2, 10), (2, 20), (3, 30), (4, 500)])]  # fmt: skip
    # three members within 60 s: more than 2 is a burst, each of its orders; the late one not
    assert domain.over_in_window(store, 60, 2, distinct=True) == {0, 1, 2, 3}
    assert domain.over_in_window(store, 60, 3, distinct=True) == set()
    assert domain.earning_score(["earning_velocity", "shared_phone_prefix"]) == 60


def test_velocity_at_its_boundary_rerun_and_reject_takes_the_points_back_once(
    client, auth_headers, make_member, database, clock, shop, app
):
    admin = auth_headers("admin")
    _limits(client, admin, earn_member_per_hour=3)
    steady, fast = make_member(), make_member()
    start = clock.now()
    clock.advance(timedelta(hours=2))
    shop = admin = auth_headers("admin", fresh=True)
    for i in range(3):  # three within the hour: at the limit, not over it
        _order(client, shop, steady, f"S-{i}", start + timedelta(minutes=10 * i))
    # and a fourth an hour after the first: the first has left the window
    _order(client, shop, steady, "S-3", start + timedelta(minutes=60))
    for i in range(4):  # four within the hour: the fourth is over
        _order(client, shop, fast, f"F-{i}", start + timedelta(minutes=5 * i))
    assert jobs.run(database, app.state.cipher, clock.now())["earning_reviews"] == 1
    fourth = f"order:{_order_id(database, 'F-3')}"
    review = _reviews(database)[fourth]
    assert review.rules == ["earning_velocity"] and review.score == 40
    assert review.status == "pending" and review.decision == "review"
    # a rerun (or the next hour's) opens nothing twice
    assert jobs.run_earning(database, clock.now()) == 0
    clock.advance(timedelta(hours=1))
    assert jobs.run_earning(database, clock.now()) == 0
    assert list(_reviews(database)) == [fourth]
    op = auth_headers("operator", fresh=True)
    listed = client.get("/api/v1/risk/reviews", headers=op).json()
    assert [(x["kind"], x["gift_code"]) for x in listed] == [("earning", fourth)]

    op = auth_headers("operator", fresh=True)
    before = client.get(f"/api/v1/members/{fast}/points", headers=op).json()["available"]
    r = client.post(
        f"/api/v1/risk/reviews/{review.id}/decision",
        json={"approve": False, "note": "bought on a stolen card"},
        headers=op,
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    after = client.get(f"/api/v1/members/{fast}/points", headers=op).json()["available"]
    assert before - after == review.points  # the fourth order's points, taken back
    again = client.post(
        f"/api/v1/risk/reviews/{review.id}/decision", json={"approve": False}, headers=op
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "risk_review_decided"
    assert client.get(f"/api/v1/members/{fast}/points", headers=op).json()["available"] == after
    with database.unit_of_work() as s:
        taken = s.scalars(select(PointsAdjustment)).all()
        assert [(a.amount, a.status) for a in taken] == [(-review.points, "applied")]
        decided = s.scalar(select(AuditRecord).where(AuditRecord.action == "risk.review_decide"))
        assert decided is not None and decided.after is not None
        assert decided.after["points_taken"] == review.points
        told = s.scalar(
            select(WebhookEvent).where(WebhookEvent.event_type == "risk.review.decided")
        )
        assert told is not None and told.payload["subject"] == review.subject
        assert "gift" not in told.payload and told.payload["status"] == "rejected"
        assert checks.run_all(s) == []
    # the rejected order is not looked at again
    assert jobs.run_earning(database, clock.now()) == 0


def test_rejecting_an_order_whose_points_are_pending_cancels_its_hold(
    client, auth_headers, make_member, database, clock, app, shop
):
    """Points still in their return window are not the member's yet: a rejected review
    cancels the hold at once (never released later), and takes nothing from the balance."""
    admin = auth_headers("admin")
    _limits(client, admin, earn_member_per_hour=3)
    current = client.get("/api/v1/points/settings", headers=admin).json()
    r = client.put(
        "/api/v1/points/settings", json={**current, "default_pending_days": 7}, headers=admin
    )
    assert r.status_code == 200, r.text
    fast = make_member()
    start = clock.now()
    clock.advance(timedelta(hours=2))
    shop = auth_headers("admin", fresh=True)
    for i in range(4):
        _order(client, shop, fast, f"P-{i}", start + timedelta(minutes=5 * i))
    assert jobs.run(database, app.state.cipher, clock.now())["earning_reviews"] == 1
    review = _reviews(database)[f"order:{_order_id(database, 'P-3')}"]
    op = auth_headers("operator", fresh=True)
    before = client.get(f"/api/v1/members/{fast}/points", headers=op).json()
    assert before["pending"] > 0
    r = client.post(
        f"/api/v1/risk/reviews/{review.id}/decision", json={"approve": False}, headers=op
    )
    assert r.status_code == 200, r.text
    after = client.get(f"/api/v1/members/{fast}/points", headers=op).json()
    assert before["pending"] - after["pending"] == review.points
    assert after["available"] == before["available"]
    with database.unit_of_work() as s:
        assert s.scalars(select(PointsAdjustment)).all() == []  # nothing released to take
        decided = s.scalar(select(AuditRecord).where(AuditRecord.action == "risk.review_decide"))
        assert decided is not None and decided.after is not None
        assert decided.after["points_pending_cancelled"] == review.points
        assert decided.after["points_taken"] == 0
        assert checks.run_all(s) == []
        # the member's history says what happened, not "a return"
        cancel = s.scalar(select(PointsPosting).where(PointsPosting.kind == "clawback"))
        assert cancel is not None and cancel.pending_delta == -review.points
        (line,) = history_text.lines(s, review.member_id, [cancel], {})
        assert line.sentence == (
            "Pending points of order %(order)s cancelled by a risk review",
            {"order": "P-3"},
        )
        assert line.details == []
    # past the window, the three other orders' points are released, the rejected one's not
    clock.advance(timedelta(days=8))
    op = auth_headers("operator", fresh=True)
    later = client.get(f"/api/v1/members/{fast}/points", headers=op).json()
    assert later["available"] + later["pending"] == before["available"] + before["pending"] - (
        review.points
    )


def test_new_member_returns_and_credits_at_their_boundaries_and_approve_keeps_points(
    client, auth_headers, make_member, database, clock, shop
):
    admin = auth_headers("admin")
    joined = clock.now()
    newbie, almost, late = make_member(), make_member(), make_member()
    points = _order(client, shop, newbie, "N-1", joined + timedelta(minutes=1))
    assert _order(client, shop, almost, "A-1", joined + timedelta(minutes=1)) == points
    clock.advance(timedelta(hours=25))
    shop = admin = auth_headers("admin", fresh=True)
    # late's order comes after the first day: not a new member's earning any more
    assert _order(client, shop, late, "L-1", joined + timedelta(hours=24, minutes=1)) == points
    _limits(client, admin, earn_new_member_points=points)
    assert jobs.run_earning(database, clock.now()) == 2  # two new members at exactly P points
    subjects = set(_reviews(database))
    assert f"order:{_order_id(database, 'L-1')}" not in subjects
    _limits(client, admin, earn_new_member_points=points + 1)  # one more: none would fire
    with database.unit_of_work() as s:
        assert earning.assess(s, earning._settings(s), clock.now()) == []

    # a member approved stays approved: the points are kept, nothing is adjusted
    op = auth_headers("operator", fresh=True)
    first = _reviews(database)[f"order:{_order_id(database, 'N-1')}"]
    ok = client.post(
        f"/api/v1/risk/reviews/{first.id}/decision", json={"approve": True}, headers=op
    )
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(PointsAdjustment)) == 0

    # a staff member's manual credits in unusual volume: each credit, at P and not below
    generous = auth_headers("admin", fresh=True)
    for no in (newbie, almost):
        r = client.post(
            f"/api/v1/members/{no}/points/adjustments",
            json={"ledger": "points", "amount": 4_000, "reason": "goodwill"},
            headers=generous,
        )
        assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    _limits(client, admin, unusual_adjust_points=8_001)
    with database.unit_of_work() as s:
        assert earning.assess(s, earning._settings(s), clock.now()) == []
    _limits(client, admin, unusual_adjust_points=8_000)
    assert jobs.run_earning(database, clock.now()) == 2
    credits = [r for r in _reviews(database).values() if r.subject.startswith("adjustment:")]
    assert [(r.points, r.rules) for r in credits] == [(4_000, ["unusual_adjustments"])] * 2
    # rejecting a credit takes it back
    r = client.post(
        f"/api/v1/risk/reviews/{credits[0].id}/decision", json={"approve": False}, headers=op
    )
    assert r.status_code == 200, r.text
    with database.unit_of_work() as s:
        taken_back = PointsAdjustment.amount == -4_000
        assert s.scalar(select(func.count()).select_from(PointsAdjustment).where(taken_back)) == 1
        assert checks.run_all(s) == []


def test_bad_earning_settings_are_refused_and_nothing_is_saved(client, auth_headers, database):
    admin = auth_headers("admin")
    now = client.get("/api/v1/risk/settings", headers=admin).json()
    assert now["earn_member_per_hour"] == 5 and now["earning_review_threshold"] == 40

    def rows() -> int:
        with database.unit_of_work() as s:
            return int(s.scalar(select(func.count()).select_from(ProgramSetting)) or 0)

    saved = rows()
    for bad in (
        {"earn_member_per_hour": 0},
        {"earn_store_members": 1},
        {"earn_return_days": 366},
        {"earning_review_threshold": 101},
        {"earn_new_member_points": "many"},
    ):
        r = client.put("/api/v1/risk/settings", json={**now, **bad}, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    assert rows() == saved
    assert client.get("/api/v1/risk/settings", headers=admin).json() == now


def test_console_queue_names_the_order_and_its_points_in_english_and_chinese(
    client,
    auth_headers,
    make_member,
    database,
    clock,
    shop,
    operator,  # noqa: F811
):
    _limits(client, auth_headers("admin"), earn_member_per_hour=1)
    no = make_member()
    clock.advance(timedelta(minutes=40))
    shop = auth_headers("admin", fresh=True)
    _order(client, shop, no, "Q-1", clock.now() - timedelta(minutes=30))
    points = _order(client, shop, no, "Q-2", clock.now() - timedelta(minutes=20))
    assert jobs.run_earning(database, clock.now()) == 1
    page = client.get("/console/risk")
    assert page.status_code == 200
    assert "Order Q-2" in page.text and "Many orders by this member within an hour" in page.text
    assert f"{points:,}" in page.text and "Earning" in page.text
    client.headers["Accept-Language"] = "zh-CN"
    page = client.get("/console/risk")
    assert "该会员一小时内下单过多" in page.text and "积分获取" in page.text
    review = next(iter(_reviews(database).values()))
    r = client.post(
        f"/console/risk/{review.id}/reject",
        data={"csrf_token": operator},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    with database.unit_of_work() as s:
        assert s.scalar(select(RiskReview.status)) == "rejected"
        assert s.scalar(select(PointsAdjustment.amount)) == -points


def _return_all(client: Any, h: dict[str, str], ext: str, at: Any) -> None:
    r = client.post(
        f"/api/v1/orders/pos/{ext}/returns",
        json={
            "external_id": f"R-{ext}",
            "returned_at": at.isoformat(),
            "lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 2}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text


def test_seeded_earning_fraud_is_caught_and_the_rules_precision_reported(
    client, auth_headers, make_member, database, clock, shop, app
):
    normal = [make_member() for _ in range(12)]
    fast, cycler = make_member(), make_member()
    for i, no in enumerate([*normal, fast, cycler]):  # everyone's first order, a month ago
        _order(client, shop, no, f"J-{i}", clock.now())
    clock.advance(timedelta(days=30))
    h = auth_headers("admin", fresh=True)
    start = clock.now()
    clock.advance(timedelta(hours=12))
    h = auth_headers("admin", fresh=True)
    # ordinary members: an order each, ten minutes apart; one returns theirs
    earned = 0
    for i, no in enumerate(normal):
        earned = _order(client, h, no, f"N-{i}", start + timedelta(minutes=10 * i))
    _return_all(client, h, "N-0", start + timedelta(hours=2))
    # fraud 1: six orders within the hour (five allowed)
    for i in range(6):
        _order(client, h, fast, f"V-{i}", start + timedelta(hours=3, minutes=5 * i))
    # fraud 2: earn and return, three times over
    for i in range(3):
        _order(client, h, cycler, f"C-{i}", start + timedelta(hours=4, minutes=30 * i))
        _return_all(client, h, f"C-{i}", start + timedelta(hours=6, minutes=i))
    # fraud 3: a new member earning big on the day they join
    newbie = make_member(phone="13712340000")
    big = {"lines": [{"sku": "BEA-1", "quantity": 20, "unit_price_fen": 19900}],
           "payments": [{"method": "wechat", "amount_fen": 398_000}]}  # fmt: skip
    big_points = _order(client, h, newbie, "B-1", clock.now(), **big)
    # fraud 4: five new members on one phone prefix, ordering at one store within a minute
    farm = [make_member(phone=f"1391234{n:04d}") for n in range(1, 6)]
    for i, no in enumerate(farm):
        _order(client, h, no, f"P-{i}", start + timedelta(hours=7, seconds=10 * i))
    # fraud 5: one staff member crediting two members by hand, 9,500 each
    credited = [make_member(phone=f"1367777{n:04d}") for n in range(2)]
    for no in credited:
        r = client.post(
            f"/api/v1/members/{no}/points/adjustments",
            json={"ledger": "points", "amount": 9_500, "reason": "goodwill"},
            headers=h,
        )
        assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    assert jobs.run_flags(database, app.state.cipher, clock.now()) == 5
    _limits(
        client,
        h,
        earn_member_per_hour=5,
        earn_store_members=4,  # more than four members at one till within two minutes
        earn_new_member_points=min(big_points, 5_000),
        earn_return_points=2 * earned + 1,  # one ordinary return is below it
        unusual_adjust_points=15_000,
    )
    opened = jobs.run(database, app.state.cipher, clock.now())["earning_reviews"]
    fraud = {fast, cycler, newbie, *farm, *credited}
    with database.unit_of_work() as s:
        ids = dict(s.execute(select(Member.member_no, Member.id)).all())
        reviewed = list(s.scalars(select(RiskReview.member_id)))
    flagged, seeded = set(reviewed), {ids[no] for no in fraud}
    # Reported in docs/risk.md: precision 1.0 (11 of 11 members flagged were seeded fraud),
    # recall 11/11; 12 reviews: the sixth order, three cycled orders, the new member's order,
    # five orders of the prefix burst, two credits
    assert flagged >= seeded, seeded - flagged
    assert domain.precision(flagged, seeded) == 1.0, flagged - seeded
    assert opened == len(reviewed) == 1 + 3 + 1 + 5 + 2
    assert jobs.run_earning(database, clock.now()) == 0


def test_earn_and_return_counts_the_points_returns_took_back_at_its_boundary(
    client, auth_headers, make_member, database, clock, shop
):
    no, partial = make_member(), make_member()
    clock.advance(timedelta(days=3))
    h = auth_headers("admin", fresh=True)
    took = 0
    for i in range(2):  # two orders, returned whole
        took += _order(client, h, no, f"C-{i}", clock.now() - timedelta(hours=5 - i))
        _return_all(client, h, f"C-{i}", clock.now() - timedelta(hours=3 - i))
    _order(client, h, partial, "P-1", clock.now() - timedelta(hours=5))
    r = client.post(  # one unit of the cheap line back: a little of the order's points
        "/api/v1/orders/pos/P-1/returns",
        json={
            "external_id": "R-P-1",
            "returned_at": (clock.now() - timedelta(hours=4)).isoformat(),
            "lines": [{"line_no": 2, "quantity": 1}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    _limits(client, h, earn_return_points=took + 1)
    with database.unit_of_work() as s:
        assert earning.assess(s, earning._settings(s), clock.now()) == []
    _limits(client, h, earn_return_points=took)
    assert jobs.run_earning(database, clock.now()) == 2
    reviews = _reviews(database)
    assert set(reviews) == {f"order:{_order_id(database, f'C-{i}')}" for i in range(2)}
    assert {tuple(r.rules) for r in reviews.values()} == {("earn_and_return",)}
    # a month on, the returns are out of the window: nothing new, and nothing would fire
    clock.advance(timedelta(days=31))
    with database.unit_of_work() as s:
        assert earning.assess(s, earning._settings(s), clock.now()) == []


def test_the_demo_seeds_earning_fraud_that_the_pass_finds_alone(
    client, auth_headers, make_member, database, clock, shop, app
):
    normal = [make_member() for _ in range(6)]
    clock.advance(timedelta(days=30))
    h = auth_headers("admin", fresh=True)
    for i, no in enumerate(normal):  # ordinary members ordering over the last day
        _order(client, h, no, f"N-{i}", clock.now() - timedelta(hours=20 - 3 * i))
    tz = ZoneInfo("Asia/Shanghai")
    seeded = fraud.seed_earning_fraud(database, app.state.cipher, now=clock.now(), tz=tz)
    assert seeded == {"members": 3 + 21 + 3}
    assert fraud.seed_earning_fraud(database, app.state.cipher, now=clock.now(), tz=tz) == {
        "members": 0
    }
    opened = jobs.run(database, app.state.cipher, clock.now())["earning_reviews"]
    with database.unit_of_work() as s:
        rules = {r.member_id: set(r.rules) for r in s.scalars(select(RiskReview))}
        tagged = set(
            s.scalars(
                select(MemberTag.member_id)
                .join(Tag, Tag.id == MemberTag.tag_id)
                .where(Tag.name == fraud.TAG)
            )
        )
    assert opened > 0 and set(rules) == tagged  # every seeded member, and only they
    assert set().union(*rules.values()) == set(domain.EARNING_WEIGHTS)  # every rule fires
