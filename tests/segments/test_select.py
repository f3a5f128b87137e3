"""A segment selects exactly the expected members, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from patron.ledger.models import PointsAccount
from patron.members.models import Member, MemberConsent, MemberTag, Tag
from patron.segments import service
from patron.segments.compile import compile_rule, lifecycle_stage
from patron.segments.domain import LifecycleSettings, parse_rule
from patron.tiers.models import MemberTier
from tests.analytics.history import add_orders
from tests.statements import count_statements

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def _ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def _member(s, i, *, reg_days, status="active", city=None, region=None):
    s.add(
        Member(
            id=i,
            member_no=f"T{i:09d}",
            phone_enc=b"x",
            phone_index=f"idx-{i}",
            registration_channel="web",
            status=status,
            member_type="regular",
            city=city,
            region=region,
            created_at=_ago(reg_days),
            updated_at=_ago(reg_days),
        )
    )


def _seed(s) -> None:
    _member(s, 1, reg_days=10, city="Shanghai")  # new, no purchase
    _member(s, 2, reg_days=400, city="Beijing")  # active: bought 20 days ago
    _member(s, 3, reg_days=400, region="East")  # dormant: last 120 days ago
    _member(s, 4, reg_days=400)  # churned: last 200 days ago
    _member(s, 5, reg_days=400)  # churned: never bought
    _member(s, 6, reg_days=10, status="frozen", city="Shanghai")  # never selected
    _member(s, 7, reg_days=100)  # dormant: never bought, registered 100 days ago
    _member(s, 8, reg_days=400)  # churned: its only order was fully returned
    s.flush()
    for i, code in ((1, "gold"), (2, "silver"), (3, "gold"), (6, "gold")):
        s.add(MemberTier(member_id=i, tier_code=code, since=NOW, updated_at=NOW))
    vip, baby = Tag(name="vip", created_at=NOW), Tag(name="baby", created_at=NOW)
    s.add_all([vip, baby])
    s.flush()
    for m, t in ((1, vip), (3, vip), (3, baby), (4, baby), (6, vip)):
        s.add(MemberTag(member_id=m, tag_id=t.id, created_at=NOW, created_by="test"))
    for m, pts in ((1, 500), (2, 100), (3, 1000), (6, 500)):
        s.add(PointsAccount(member_id=m, available=pts, updated_at=NOW))
    for m, granted in ((1, True), (2, False), (3, True), (6, True)):
        s.add(
            MemberConsent(
                member_id=m, channel="sms", granted=granted, updated_at=NOW, source="test"
            )
        )
    s.flush()
    day = lambda n: _ago(n).date()  # noqa: E731
    add_orders(s, [(2, day(20), 60000), (2, day(100), 10000), (3, day(120), 5000)])
    add_orders(s, [(4, day(200), 3000)])
    add_orders(s, [(8, day(30), 9000)], status="returned")
    s.flush()


CASES = [
    ({"field": "tier", "values": ["gold"]}, {1, 3}),
    ({"field": "tier", "op": "not_in", "values": ["gold"]}, {2, 4, 5, 7, 8}),
    ({"field": "tag", "values": ["vip", "baby"]}, {1, 3, 4}),
    ({"field": "tag", "op": "all", "values": ["vip", "baby"]}, {3}),
    ({"field": "tag", "op": "none", "values": ["vip"]}, {2, 4, 5, 7, 8}),
    ({"field": "city", "values": ["Shanghai", "Beijing"]}, {1, 2}),
    ({"field": "city", "op": "not_in", "values": ["Shanghai"]}, {2, 3, 4, 5, 7, 8}),
    ({"field": "region", "values": ["East"]}, {3}),
    ({"field": "registered", "on_or_after": str(_ago(10).date())}, {1}),
    ({"field": "registered", "on_or_before": str(_ago(50).date())}, {2, 3, 4, 5, 7, 8}),
    ({"field": "points_balance", "min": 500}, {1, 3}),
    ({"field": "points_balance", "max": 100}, {2, 4, 5, 7, 8}),
    ({"field": "lifecycle", "values": ["new"]}, {1}),
    ({"field": "lifecycle", "values": ["active"]}, {2}),
    ({"field": "lifecycle", "values": ["dormant"]}, {3, 7}),
    ({"field": "lifecycle", "values": ["churned"]}, {4, 5, 8}),
    ({"field": "last_purchase_days", "max": 30}, {2}),
    ({"field": "last_purchase_days", "min": 100}, {3, 4}),
    ({"field": "order_count", "min": 2}, {2}),
    ({"field": "order_count", "max": 0}, {1, 5, 7, 8}),
    ({"field": "order_count", "min": 1, "window_days": 150}, {2, 3}),
    ({"field": "spend_fen", "min": 50000, "window_days": 30}, {2}),
    ({"field": "spend_fen", "max": 5000}, {1, 3, 4, 5, 7, 8}),
    ({"field": "consent", "channel": "sms"}, {1, 3}),
    ({"field": "consent", "channel": "sms", "granted": False}, {2, 4, 5, 7, 8}),
    (
        {
            "op": "or",
            "rules": [
                {
                    "op": "and",
                    "rules": [
                        {"field": "tier", "values": ["gold"]},
                        {"field": "consent", "channel": "sms"},
                        {"field": "points_balance", "min": 800},
                    ],
                },
                {"field": "lifecycle", "values": ["churned"]},
            ],
        },
        {3, 4, 5, 8},
    ),
]


def test_each_condition_selects_exactly(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        settings = LifecycleSettings()
        for raw, expected in CASES:
            stmt = compile_rule(parse_rule(raw), now=NOW, tz=TZ, lifecycle=settings)
            assert set(s.scalars(stmt)) == expected, raw
        p = service.preview(s, parse_rule({"field": "tier", "values": ["gold"]}), now=NOW, tz=TZ)
        assert (p.count, p.sample) == (2, ["T000000001", "T000000003"])


def test_lifecycle_thresholds_are_settings(database) -> None:
    with database.unit_of_work() as s:
        _seed(s)
        wide = LifecycleSettings(new_days=5, active_days=150, churned_days=365)
        stages = dict(
            s.execute(
                Member.__table__.select()
                .with_only_columns(Member.id, lifecycle_stage(NOW, wide))
                .where(Member.status == "active")
            ).all()
        )
        assert stages == {
            1: "dormant",
            2: "active",
            3: "active",
            4: "dormant",
            5: "churned",
            7: "dormant",
            8: "churned",
        }


def test_preview_is_a_fixed_number_of_statements(database) -> None:
    """Count and sample are two selects (plus the settings read), however many members match."""
    tree = {
        "op": "or",
        "rules": [
            {"field": "lifecycle", "values": ["dormant", "churned"]},
            {"field": "spend_fen", "min": 1, "window_days": 365},
            {"field": "tag", "op": "all", "values": ["vip", "baby"]},
        ],
    }
    with database.unit_of_work() as s:
        _seed(s)
        with count_statements(database.engine) as log:
            p = service.preview(s, parse_rule(tree), now=NOW, tz=TZ)
        assert p.count == 6
        assert log.count <= 3, log.report()


def test_the_benchmark_count_equals_a_brute_force_count(database) -> None:
    """The benchmark's three conditions (tier AND SMS consent AND net spend in 90 days) over a
    few hundred generated members with purchases, returns, refunds and old orders: the SQL
    count is the count found by looking at every member in Python."""
    import random

    from patron.orders.models import Order

    rnd = random.Random(17)
    tree = {
        "op": "and",
        "rules": [
            {"field": "tier", "values": ["gold"]},
            {"field": "consent", "channel": "sms"},
            {"field": "spend_fen", "min": 50000, "window_days": 90},
        ],
    }
    members = range(1, 301)
    with database.unit_of_work() as s:
        status = {i: rnd.choice(["active"] * 8 + ["frozen"]) for i in members}
        for i in members:
            _member(s, i, reg_days=rnd.randint(1, 700), status=status[i])
        s.flush()
        tiers = {i: rnd.choice(["base", "silver", "gold"]) for i in members}
        consent = {i: rnd.choice([True, False, None]) for i in members}
        for i in members:
            s.add(MemberTier(member_id=i, tier_code=tiers[i], since=NOW, updated_at=NOW))
            if consent[i] is not None:
                s.add(
                    MemberConsent(
                        member_id=i,
                        channel="sms",
                        granted=consent[i],
                        updated_at=NOW,
                        source="test",
                    )
                )
        s.flush()
        for i in members:
            for days in rnd.sample(range(151), rnd.randint(0, 6)):  # one order a day
                add_orders(
                    s,
                    [(i, _ago(days).date(), rnd.randint(1, 40000))],
                    status=rnd.choice(["completed"] * 4 + ["partially_returned", "returned"]),
                )
        s.flush()
        for order in s.query(Order).filter(Order.status == "partially_returned"):
            order.refunded_fen = order.total_fen // 2
        s.flush()
        # The business day in the generated orders is at 02:00 UTC, as the window's edge.
        since = NOW - timedelta(days=90)
        spend: dict[int, int] = {}
        for o in s.query(Order):
            if o.status in ("completed", "partially_returned") and o.ordered_at >= since:
                spend[o.member_id] = spend.get(o.member_id, 0) + o.total_fen - o.refunded_fen
        expected = {
            i
            for i in members
            if status[i] == "active"
            and tiers[i] == "gold"
            and consent[i] is True
            and spend.get(i, 0) >= 50000
        }
        assert len(expected) > 5  # the data exercises the condition
        p = service.preview(s, parse_rule(tree), now=NOW, tz=TZ)
        assert p.count == len(expected)
        got = set(
            s.scalars(compile_rule(parse_rule(tree), now=NOW, tz=TZ, lifecycle=LifecycleSettings()))
        )
        assert got == expected
