"""Imported orders go through the one order writer: the same ledger as the API gives for the
same orders (a property over random baskets and members), with the history dated at each
order's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.imports.importers import OrderImporter
from patron.imports.runner import run_import
from patron.ledger import domain as ledger_domain
from patron.ledger.check import run_check
from patron.ledger.models import (
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsLot,
    PointsPosting,
)
from patron.members.models import Member
from patron.orders.models import Order
from patron.program import service as program
from patron.rules.definitions import EarningRules
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks.models import WebhookEvent

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # the test clock (10:00 in Shanghai)
TZ = ZoneInfo("Asia/Shanghai")
HEADER = "order_id,member_no,phone,store_code,ordered_at,sku,quantity,unit_price,discount\n"
PRICE = {"BEA-1": (19900, "199.00"), "FRE-1": (1250, "12.50")}


def _import(app, database, tmp_path, rows, *, source="hist", name="o"):
    """Import (order id, member no, local time, sku, quantity) rows through the bulk path."""
    path = tmp_path / f"{name}.csv"
    path.write_text(
        HEADER
        + "".join(
            f"{o},{no},,SH001,{at.astimezone(TZ):%Y-%m-%d %H:%M:%S},{sku},{q},{PRICE[sku][1]},\n"
            for o, no, at, sku, q in rows
        )
    )
    importer = OrderImporter(app.state.cipher, Principal.system("t"), tz=TZ, now=NOW, source=source)
    return run_import(database, importer, path, report_path=tmp_path / f"{name}.err")


def _member_id(s, no):
    return s.scalar(select(Member.id).where(Member.member_no == no))


# ---- dated at the order ------------------------------------------------------------------------


def test_an_imported_lot_expires_by_the_policy_counted_from_the_order(
    app, database, shop, make_member, tmp_path
):
    recent, old = make_member(), make_member()
    recent_at = datetime(2026, 2, 1, 10, 0, tzinfo=TZ)
    old_at = datetime(2024, 12, 1, 10, 0, tzinfo=TZ)  # more than the default 365 days ago
    report = _import(
        app,
        database,
        tmp_path,
        [("R1", recent, recent_at, "BEA-1", 1), ("R2", old, old_at, "BEA-1", 1)],
    )
    assert (report.imported, report.rejected) == (2, 0)
    policy = ledger_domain.ExpiryPolicy()
    with database.unit_of_work() as s:
        [lot] = s.scalars(select(PointsLot).where(PointsLot.member_id == _member_id(s, recent)))
        at = recent_at
        assert lot.earned_at == at.astimezone(UTC)
        assert lot.expires_at == ledger_domain.compute_expiry(at, policy, TZ)
        assert lot.remaining == lot.amount > 0
        # a lot already past its expiry expires at once
        mid = _member_id(s, old)
        [lot] = s.scalars(select(PointsLot).where(PointsLot.member_id == mid))
        assert lot.expires_at <= NOW
        assert lot.remaining == 0
        kinds = [
            (p.kind, p.available_delta)
            for p in s.scalars(
                select(PointsPosting)
                .where(PointsPosting.member_id == mid)
                .order_by(PointsPosting.id)
            )
        ]
        assert kinds == [("earn", lot.amount), ("expire", -lot.amount)]
        account = s.get(PointsAccount, mid)
        assert account is not None
        assert (account.available, account.lifetime_expired) == (0, lot.amount)
        assert run_check(s, now=NOW) == []


def test_past_due_imported_lots_expire_at_once_with_one_posting_per_member(
    app, database, shop, make_member, tmp_path
):
    first, second = make_member(), make_member()
    old = datetime(2024, 6, 1, 10, 0, tzinfo=TZ)  # every lot below is past its expiry
    rows = [
        ("X1", first, old, "BEA-1", 1),
        ("X2", second, old + timedelta(days=1), "FRE-1", 2),
        ("X3", first, old + timedelta(days=2), "BEA-1", 2),
        ("X4", first, old + timedelta(days=3), "FRE-1", 1),
    ]
    report = _import(app, database, tmp_path, rows)
    assert (report.imported, report.rejected) == (4, 0)
    with database.unit_of_work() as s:
        for no, n_lots in ((first, 3), (second, 1)):
            mid = _member_id(s, no)
            lots = list(s.scalars(select(PointsLot).where(PointsLot.member_id == mid)))
            assert len(lots) == n_lots
            assert all(lot.remaining == 0 and lot.expires_at <= NOW for lot in lots)
            expiries = list(
                s.scalars(
                    select(PointsPosting).where(
                        PointsPosting.member_id == mid, PointsPosting.kind == "expire"
                    )
                )
            )
            total = sum(lot.amount for lot in lots)
            assert [p.available_delta for p in expiries] == [-total]
            allocated = s.execute(
                select(PointsAllocation.lot_id, PointsAllocation.amount).where(
                    PointsAllocation.posting_id == expiries[0].id
                )
            ).all()
            assert sorted(allocated) == sorted((lot.id, lot.amount) for lot in lots)
            account = s.get(PointsAccount, mid)
            assert account is not None
            assert (account.available, account.lifetime_earned, account.lifetime_expired) == (
                0,
                total,
                total,
            )
            expired_events = list(
                s.scalars(
                    select(WebhookEvent.event_type).where(
                        WebhookEvent.member_no == no, WebhookEvent.event_type == "points.expired"
                    )
                )
            )
            assert len(expired_events) == 1
        assert run_check(s, now=NOW) == []


@pytest.mark.parametrize("bulk", [True, False], ids=["batch", "order-by-order"])
def test_patron_check_reports_an_imported_lot_left_open_past_its_expiry(
    app, database, shop, make_member, tmp_path, bulk
):
    no = make_member()
    old = datetime(2024, 6, 1, 10, 0, tzinfo=TZ)
    path = tmp_path / "old.csv"
    path.write_text(HEADER + f"Y1,{no},,SH001,{old:%Y-%m-%d %H:%M:%S},BEA-1,1,199.00,\n")
    importer = OrderImporter(
        app.state.cipher, Principal.system("t"), tz=TZ, now=NOW, source="hist", bulk=bulk
    )
    report = run_import(database, importer, path, report_path=tmp_path / "old.err")
    assert (report.imported, report.rejected) == (1, 0)
    with database.unit_of_work() as s:
        mid = _member_id(s, no)
        [lot] = s.scalars(select(PointsLot).where(PointsLot.member_id == mid))
        assert lot.remaining == 0  # expired at once, whichever way the order was written
        assert [
            k
            for (k,) in s.execute(
                select(PointsPosting.kind)
                .where(PointsPosting.member_id == mid)
                .order_by(PointsPosting.id)
            )
        ] == ["earn", "expire"]
        assert run_check(s, now=NOW, member_id=mid) == []
        # the lot left open, as a writer that forgot the expiry would leave it
        s.execute(update(PointsLot).where(PointsLot.id == lot.id).values(remaining=lot.amount))
    with database.unit_of_work() as s:
        found = run_check(s, now=NOW, member_id=mid)
    assert (
        f"lot {lot.id} of member {mid} was written already expired and still holds "
        f"{lot.amount} points"
    ) in found


def test_imported_growth_counts_in_the_order_s_qualification_window(
    app, database, shop, make_member, tmp_path
):
    no = make_member()
    first = datetime(2025, 1, 10, 10, 0, tzinfo=TZ)  # 600 growth, outside the window of the second
    second = datetime(2026, 2, 20, 10, 0, tzinfo=TZ)  # 597 growth: 1,197 would reach silver
    report = _import(
        app, database, tmp_path, [("G1", no, first, "FRE-1", 48), ("G2", no, second, "BEA-1", 3)]
    )
    assert report.imported == 2
    with database.unit_of_work() as s:
        mid = _member_id(s, no)
        postings = list(
            s.scalars(
                select(GrowthPosting)
                .where(GrowthPosting.member_id == mid)
                .order_by(GrowthPosting.id)
            )
        )
        assert [p.effective_at for p in postings] == [
            first.astimezone(UTC),
            second.astimezone(UTC),
        ]
        assert sum(p.amount for p in postings) >= 1_000
        tier = s.get(MemberTier, mid)
        assert tier is None or tier.tier_code == "regular"
        assert list(s.scalars(select(TierChange).where(TierChange.member_id == mid))) == []


def test_two_tier_steps_in_one_batch_leave_two_history_rows(
    app, database, shop, make_member, tmp_path
):
    no = make_member()
    silver_at = datetime(2026, 2, 1, 10, 0, tzinfo=TZ)
    gold_at = datetime(2026, 2, 3, 10, 0, tzinfo=TZ)
    report = _import(
        app,
        database,
        tmp_path,
        [("T1", no, silver_at, "BEA-1", 6), ("T2", no, gold_at, "BEA-1", 21)],
    )
    assert report.imported == 2
    with database.unit_of_work() as s:
        mid = _member_id(s, no)
        changes = [
            (c.from_code, c.to_code, c.at)
            for c in s.scalars(
                select(TierChange).where(TierChange.member_id == mid).order_by(TierChange.id)
            )
        ]
        assert changes == [
            ("regular", "silver", silver_at.astimezone(UTC)),
            ("silver", "gold", gold_at.astimezone(UTC)),
        ]
        tier = s.get(MemberTier, mid)
        assert tier is not None
        assert (tier.tier_code, tier.since) == ("gold", changes[1][2])
        tier_events = list(
            s.scalars(
                select(WebhookEvent.event_type).where(
                    WebhookEvent.member_no == no, WebhookEvent.event_type == "tier.changed"
                )
            )
        )
        assert len(tier_events) == 2


# ---- import and API: one writer, one ledger ----------------------------------------------------


def _ledger(s, no):
    """A member's ledger as the import and the API must both leave it (dates aside: imported
    history is dated at the order, the API's at the moment it records the order)."""
    mid = _member_id(s, no)
    account = s.get(PointsAccount, mid)
    tier = s.get(MemberTier, mid)

    def rows(model, *cols, order_by=None):
        q = select(*cols).where(model.member_id == mid).order_by(order_by or model.id)
        return [tuple(r) for r in s.execute(q)]

    return {
        "orders": rows(
            Order,
            Order.external_id,
            Order.points_earned,
            Order.growth_earned,
            Order.welcome_bonus,
            Order.first_purchase,
            Order.total_fen,
            Order.paid_fen,
            Order.rules_trace,
            Order.business_date,
            order_by=Order.external_id,
        ),
        "account": account
        and (account.available, account.pending, account.debt, account.lifetime_earned),
        "postings": rows(PointsPosting, PointsPosting.kind, PointsPosting.available_delta),
        "lots": rows(PointsLot, PointsLot.amount, PointsLot.remaining),
        "growth": rows(GrowthPosting, GrowthPosting.kind, GrowthPosting.amount),
        "tier": tier and tier.tier_code,
        "tier_changes": rows(TierChange, TierChange.from_code, TierChange.to_code),
        "events": list(
            s.scalars(
                select(WebhookEvent.event_type)
                .where(WebhookEvent.member_no == no)
                .order_by(WebhookEvent.id)
            )
        ),
        "audits": [
            a
            for (a,) in s.execute(
                select(AuditRecord.action)
                .where(AuditRecord.entity_type == "member", AuditRecord.entity_id == str(mid))
                .order_by(AuditRecord.id)
            )
        ],
    }


def test_import_and_api_give_identical_ledgers(app, database, client, shop, make_member, tmp_path):
    # on PostgreSQL every batch of the import takes its ids up front and COPYs every table
    # (orders.writer_copy), while the API writes each order with one statement (writer_one)
    with database.unit_of_work() as s:
        program.put_section(
            s,
            Principal.system("t"),
            "earning",
            EarningRules(daily_cap_points=3_000, category_coefficients={"beauty": 15_000}),
            now=NOW,
        )
    run = iter(range(1_000))

    order = st.tuples(
        st.integers(0, 2),  # which member
        st.integers(0, 20 * 24 - 1),  # hours before now (within the backdating window)
        st.sampled_from(sorted(PRICE)),
        st.integers(1, 15),
    )

    @given(st.lists(order, min_size=1, max_size=20))
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(basket):
        n = next(run)
        api = [make_member() for _ in range(3)]
        imported = [make_member() for _ in range(3)]
        rows = []
        for k, (m, hours, sku, q) in enumerate(basket):
            at = (NOW - timedelta(hours=hours)).astimezone(TZ)
            body = {
                "source": "pos",
                "external_id": f"P{n}-{k}",
                "member_no": api[m],
                "channel": "store",
                "store_code": "SH001",
                "ordered_at": at.isoformat(),
                "lines": [{"sku": sku, "quantity": q, "unit_price_fen": PRICE[sku][0]}],
                "payments": [{"method": "cash", "amount_fen": PRICE[sku][0] * q}],
            }
            r = client.post("/api/v1/orders", json=body, headers=shop)
            assert r.status_code == 201, r.text
            rows.append((f"P{n}-{k}", imported[m], at, sku, q))
        report = _import(app, database, tmp_path, rows, name=f"run{n}")
        assert (report.imported, report.rejected) == (len(rows), 0)
        with database.unit_of_work() as s:
            for a, b in zip(api, imported, strict=True):
                assert _ledger(s, a) == _ledger(s, b)
            batches = list(
                s.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.action == "orders.import_batch")
                    .order_by(AuditRecord.id)
                )
            )
            assert batches[-1].after is not None
            assert batches[-1].after["orders"] == len(rows)  # all planned, none one by one

    check()
    with database.unit_of_work() as s:
        assert run_check(s, now=NOW) == []


# PostgreSQL statements of one import batch (ANALYZE, locks, one read per kind of fact, one
# write per kind of row, the events); SQLite sends rows whose ids come back one at a time.
BATCH_BUDGET = 40


def test_an_import_batch_costs_statements_per_kind_of_row_not_per_order(
    app, database, shop, make_member, tmp_path
):
    from tests.statements import count_statements

    counts = []
    for n in (8, 40):
        members = [make_member() for _ in range(4)]  # each order moves a tier up, or more
        rows = [
            (
                f"S{n}-{k}",
                members[k % 4],
                NOW.astimezone(TZ) - timedelta(days=1 + k % 5),
                "BEA-1",
                6 + k % 3,
            )
            for k in range(n)
        ]
        with count_statements(database.engine) as log:
            report = _import(app, database, tmp_path, rows, name=f"s{n}")
        assert (report.imported, report.rejected) == (n, 0)
        counts.append(log.count)
    if database.dialect == "postgresql":
        assert counts[0] == counts[1] <= BATCH_BUDGET, counts
