"""Plan a batch of imported historical orders and write them through the one order writer
(``orders.plan.plan_order`` + ``orders.writer.write_plans``), the path the API takes.

Per batch: members, existing orders, the catalogue and each member's facts (account, orders so
far, welcome bonus, points per business day, tier, growth in the qualification windows, rule
budgets) are read with one query each; the plans are computed in file order, carrying those facts
forward (so the first-purchase bonus, daily caps, budgets and a tier reached mid-batch apply as
they would order by order), then written with one statement per kind of row.

Imported history is dated at the order: a lot's expiry counts from the order's time (a lot that
is already past it expires at once, with one expiry posting per member of the batch), growth is
effective then and counts in the order's qualification window, and each tier step is a history
row of its own.

Members whose ledger needs settling (points debt, pending points or lots due), orders paying with
points, repeated order ids, orders whose posting keys another path already used, and programs
with a return window go through the general per-order path instead (the importer does that).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.db import one_of
from patron.errors import PatronError
from patron.ledger import store
from patron.ledger.models import GrowthPosting, PointsAccount, PointsHold, PointsLot, PointsPosting
from patron.members.models import Member
from patron.orders import facts, plan, writer
from patron.orders import service as orders
from patron.orders.models import Order
from patron.orders.schemas import OrderIn
from patron.rules.domain import EarnLine
from patron.tiers import domain as tier_domain
from patron.tiers.models import MemberTier


@dataclass
class Item:
    """One parsed order of the batch: its row number and validated body."""

    row: int
    data: OrderIn


@dataclass
class _State:
    """A member's facts, carried forward through the batch in file order."""

    member: Member
    available: int
    tier_row_code: str | None
    override_until: datetime | None
    orders_so_far: int
    welcome_given: int
    #: (effective_at, amount) of the growth postings that may count in a batch order's window
    growth: list[tuple[datetime, int]] = field(default_factory=list)
    today: dict[date, int] = field(default_factory=dict)

    def facts(self, settings: plan.Settings, at: datetime, tz: ZoneInfo) -> plan.MemberFacts:
        start = tier_domain.window_start(settings.ladder.qualification_window, at, tz)
        return plan.MemberFacts(
            member_id=self.member.id,
            member_no=self.member.member_no,
            member_since=self.member.created_at,
            tier_row_code=self.tier_row_code,
            override_until=self.override_until,
            window_growth=sum(n for when, n in self.growth if when >= start),
            orders_so_far=self.orders_so_far,
            welcome_given=self.welcome_given,
            points_today=self.today.get(plan.business_date(at, tz), 0),
            available=self.available,
            debt=0,
            settling_due=False,
            keys_taken=False,
            budget_used={},
            birthday=self.member.birthday,
        )


@dataclass
class BulkOutcome:
    errors: list[tuple[int, str, str]]  # (row, field, reason)
    #: items the caller must record one by one (see the module docstring)
    per_order: list[Item]
    written: int = 0


def write(
    session: Session,
    actor: Principal,
    items: list[Item],
    members_by_no: dict[str, Member],
    *,
    now: datetime,
    tz: ZoneInfo,
) -> BulkOutcome:
    out = BulkOutcome([], [])
    settings = orders.order_settings(session)
    if settings.points.default_pending_days:
        out.per_order = items
        return out
    # 1. which orders the batch plans, and which take the per-order path
    seen: set[tuple[str, str]] = set()
    existing = _existing_orders(session, items)
    taken = _keys_taken(session, items)
    candidates: list[Item] = []
    for item in items:
        key = (item.data.source, item.data.external_id)
        member = members_by_no.get(item.data.member_no)
        if (
            key in seen
            or key in existing
            or key in taken
            or member is None
            or member.status != "active"
            or any(p.method == "points" for p in item.data.payments)
        ):
            out.per_order.append(item)  # replays, conflicts and errors are its to report
        else:
            candidates.append(item)
        seen.add(key)
    member_ids = sorted({members_by_no[i.data.member_no].id for i in candidates})
    available, unsettled = _lock_and_find_unsettled(session, member_ids, now)
    bulk = [i for i in candidates if members_by_no[i.data.member_no].id not in unsettled]
    out.per_order.extend(i for i in candidates if members_by_no[i.data.member_no].id in unsettled)
    if not bulk:
        return out
    # 2. the batch's facts, one query each
    members = {m.id: m for m in (members_by_no[i.data.member_no] for i in bulk)}
    states = _states(session, settings, members, available, bulk, now, tz)
    categories = facts.categories(session, [ln.sku for i in bulk for ln in i.data.lines])
    stores = catalog.existing_store_codes(
        session, {i.data.store_code for i in bulk if i.data.store_code}
    )
    budgets = sorted(settings.earning.budgeted_rules())
    used = facts.lock_budgets(session, budgets, now) if budgets else {}
    # 3. the plans, in file order, each seeing what the earlier ones changed
    plans: list[plan.OrderPlan] = []
    for item in bulk:
        data = item.data
        st = states[members_by_no[data.member_no].id]
        try:
            lines = orders.check_order(data, categories, stores.__contains__, now)
        except PatronError as exc:
            out.errors.append((item.row, str(exc.details.get("field", "*")), exc.message))
            continue
        for ln in lines:
            ln.paid_fen = ln.net_fen  # no points payments here
        order_in = plan.OrderInput(
            source=data.source,
            external_id=data.external_id,
            channel=data.channel,
            store_code=data.store_code,
            ordered_at=data.ordered_at,
            lines=tuple(plan.PlanLine(**vars(ln)) for ln in lines),
            payments=tuple((p.method, p.amount_fen, 0) for p in data.payments),
            points_used=0,
            earn=data.earn,
            digest=orders.content_hash(data.model_dump(mode="json")),
        )
        member_facts = st.facts(settings, data.ordered_at, tz)
        if budgets:
            member_facts = replace(member_facts, budget_used=dict(used))
        earning = None
        if data.earn:
            earning = plan.evaluate(
                member_facts,
                settings,
                occurred_at=data.ordered_at,
                lines=tuple(
                    EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku) for ln in lines
                ),
                tz=tz,
            )
        p = plan.plan_order(
            order_in,
            member_facts,
            settings,
            earning=earning,
            open_lots=(),
            actor=actor.label,
            now=now,
            tz=tz,
            dated_at_order=True,
        )
        _carry(st, p, used)
        plans.append(p)
    # 4. the writes (lots already past their expiry expire in the same write)
    writer.write_batch(session, actor, plans)
    out.written = len(plans)
    audit.record(
        session,
        actor,
        "orders.import_batch",
        "import",
        f"{bulk[0].row}-{bulk[-1].row}" if plans else "-",
        None,
        {
            "orders": len(plans),
            "points": sum(p.order["points_earned"] for p in plans),
            "growth": sum(p.growth for p in plans),
        },
        at=now,
    )
    return out


def _carry(st: _State, p: plan.OrderPlan, used: dict[str, int]) -> None:
    """What this order changes in the facts the member's next orders in the batch see."""
    st.orders_so_far += 1
    st.welcome_given += int(p.order["welcome_bonus"])
    day = p.order["business_date"]
    st.today[day] = st.today.get(day, 0) + int(p.order["points_earned"])
    if p.earn is not None:
        st.available += p.earn.available_delta
    if p.growth:
        st.growth.append((p.effective_at, p.growth))
    if p.tier_move is not None:
        st.tier_row_code = p.tier_move.to_code
    for rule_id, points in p.budget_charges:
        used[rule_id] = used.get(rule_id, 0) + points


# --------------------------------------------------------------------------- reading

# Every table a batch reads by member or key. A table left out keeps the plan it got while
# empty: member_tiers (read for each batch's members) was, and at 1M members / 3M orders its
# sequential scan against the batch's 2,000 ids took over half of the import's time.
_GROWING = (
    "members",
    "member_tiers",
    "orders",
    "order_lines",
    "points_accounts",
    "points_postings",
    "points_lots",
    "growth_accounts",
    "growth_postings",
    "webhook_events",
)


def refresh_statistics(session: Session) -> None:
    """ANALYZE the tables an import grows (PostgreSQL). An import can multiply a table's size
    within minutes, long before autovacuum looks at it; with stale statistics the batch queries
    above turn into sequential scans. The importer calls this after batches 1, 4, 16, 64 …"""
    if store.dialect(session) == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(_GROWING)}"))


def _existing_orders(session: Session, items: list[Item]) -> set[tuple[str, str]]:
    by_source: dict[str, set[str]] = defaultdict(set)
    for i in items:
        by_source[i.data.source].add(i.data.external_id)
    found: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        found.update(
            (source, ext)
            for ext in session.scalars(
                select(Order.external_id).where(
                    Order.source == source, one_of(session, Order.external_id, ids)
                )
            )
        )
    return found


def _keys_taken(session: Session, items: list[Item]) -> set[tuple[str, str]]:
    """Orders whose earn posting key another path already used (the general path replays it)."""
    keys = {f"earn:order:{i.data.source}:{i.data.external_id}": i for i in items}
    if not keys:
        return set()
    wanted = sorted(keys)
    used = set(
        session.scalars(
            select(PointsPosting.idempotency_key).where(
                one_of(session, PointsPosting.idempotency_key, wanted)
            )
        )
    ) | set(
        session.scalars(
            select(GrowthPosting.idempotency_key).where(
                one_of(session, GrowthPosting.idempotency_key, wanted)
            )
        )
    )
    return {(keys[k].data.source, keys[k].data.external_id) for k in used}


_NEW_ACCOUNTS = text(
    """
    INSERT INTO points_accounts (member_id, available, pending, debt, lifetime_earned,
                                 lifetime_redeemed, lifetime_expired, version, updated_at)
    SELECT m, 0, 0, 0, 0, 0, 0, 0, :now FROM unnest(CAST(:members AS bigint[])) AS u(m)
    ON CONFLICT (member_id) DO NOTHING
    """
)


def _lock_and_find_unsettled(
    session: Session, member_ids: list[int], now: datetime
) -> tuple[dict[int, int], set[int]]:
    """Take the members' ledger locks in id order; return their available points and those
    whose ledger needs settling."""
    if not member_ids:
        return {}, set()
    # The same locks as every ledger write (the account rows), taken in member order.
    dialect = store.dialect(session)
    if dialect == "postgresql":
        session.execute(_NEW_ACCOUNTS, {"members": member_ids, "now": now})
    else:
        session.execute(
            sqlite.insert(PointsAccount).on_conflict_do_nothing(),
            [store.new_account(mid, now) for mid in member_ids],
        )
    lock = (
        select(PointsAccount.member_id, PointsAccount.available, PointsAccount.debt)
        .where(one_of(session, PointsAccount.member_id, member_ids))
        .order_by(PointsAccount.member_id)
    )
    if dialect == "postgresql":
        lock = lock.with_for_update()
    accounts = session.execute(lock).all()
    holds = session.scalars(
        select(PointsHold.member_id).where(
            one_of(session, PointsHold.member_id, member_ids),
            PointsHold.status == "pending",
            PointsHold.release_at <= now,
        )
    )
    lots = session.scalars(
        select(PointsLot.member_id).where(
            one_of(session, PointsLot.member_id, member_ids),
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
    )
    debt = {r.member_id for r in accounts if r.debt > 0}
    return {r.member_id: int(r.available) for r in accounts}, debt | set(holds) | set(lots)


def _states(
    session: Session,
    settings: plan.Settings,
    members: dict[int, Member],
    available: dict[int, int],
    bulk: list[Item],
    now: datetime,
    tz: ZoneInfo,
) -> dict[int, _State]:
    ids = sorted(members)
    window = settings.ladder.qualification_window
    # the earliest window any order of the batch (or a live order now) counts growth in
    start = min(tier_domain.window_start(window, at, tz) for at in [now, *_times(bulk)])
    growth: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for mid, at, amount in session.execute(
        select(GrowthPosting.member_id, GrowthPosting.effective_at, func.sum(GrowthPosting.amount))
        .where(one_of(session, GrowthPosting.member_id, ids), GrowthPosting.effective_at >= start)
        .group_by(GrowthPosting.member_id, GrowthPosting.effective_at)
    ):
        growth[mid].append((at, int(amount or 0)))
    counts = {
        r[0]: (int(r[1]), int(r[2] or 0))
        for r in session.execute(
            select(Order.member_id, func.count(Order.id), func.sum(Order.welcome_bonus))
            .where(one_of(session, Order.member_id, ids))
            .group_by(Order.member_id)
        )
    }
    tier_rows = {
        r.member_id: (r.tier_code, r.override_until)
        for r in session.execute(
            select(MemberTier.member_id, MemberTier.tier_code, MemberTier.override_until).where(
                one_of(session, MemberTier.member_id, ids)
            )
        )
    }
    out: dict[int, _State] = {}
    for mid, member in members.items():
        code, override = tier_rows.get(mid, (None, None))
        n, welcome = counts.get(mid, (0, 0))
        out[mid] = _State(
            member=member,
            available=available.get(mid, 0),
            tier_row_code=code,
            override_until=override,
            orders_so_far=n,
            welcome_given=welcome,
            growth=growth.get(mid, []),
        )
    days = {plan.business_date(at, tz) for at in _times(bulk)}
    for mid, day, total in session.execute(
        select(Order.member_id, Order.business_date, func.sum(Order.points_earned))
        .where(one_of(session, Order.member_id, ids), Order.business_date.in_(sorted(days)))
        .group_by(Order.member_id, Order.business_date)
    ):
        out[mid].today[day] = int(total or 0)
    return out


def _times(bulk: list[Item]) -> list[datetime]:
    return [i.data.ordered_at for i in bulk]
