"""Model-based (Hypothesis stateful) test of stock and redemption states.

Random sequences of receipts, redemptions (pickup or shipment, 1–3 units), cancellations,
verifications at the desk, shipments, receipts by the member, returns, stock adjustments and
transfers, the dynamic price's markdowns of a slow mover and the release of unclaimed pickup
codes run against the real services and a small model written from the rules: a redemption
takes the first warehouse in the nearest-first order with enough available units at the price
of the moment, available is on hand minus reserved and never goes below zero, a cancel (or an
expired code's release) gives points and units back once, a return the points and the unit on
hand. After every step the stock levels, the price, the members' balances and ``patron check``
must agree with the model.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from patron import checks
from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.errors import PatronError
from patron.ledger import flows, queries
from patron.mall import domain, jobs, pricing, redemptions, service, stock
from patron.mall.domain import MallSettings
from patron.mall.models import Gift, Stock
from patron.mall.schemas import GiftIn
from patron.members.models import Member
from tests.ledger.test_ledger_concurrency_pg import ACTOR, TZ, new_member

PRICE = 100
WAREHOUSES = ("east", "north", "south")  # the default order for a member with no region
_phones = itertools.count()


def run_machine(database) -> None:
    class MallMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.db = database
            self.now = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
            self.gift = f"G{uuid.uuid4().hex[:8]}"
            self.created = self.now
            self.price = PRICE
            self.last_redeemed: datetime | None = None
            self.last_markdown: datetime | None = None
            with self.db.unit_of_work() as s:
                settings_now = service.get_settings(s)
                if not settings_now.markdown_enabled:
                    service.put_settings(
                        s,
                        ACTOR,
                        settings_now.model_copy(update={"markdown_enabled": True}),
                        self.now,
                    )
                catalog.upsert_store(
                    s, ACTOR, StoreIn(code="SH001", name="SH", region="East China"), now=self.now
                )
                g = service.upsert_gift(
                    s,
                    ACTOR,
                    GiftIn(code=self.gift, name="g", category="home", points=PRICE),
                    now=self.now,
                )
                self.gift_id = g.id
            self.members = [
                new_member(self.db, self.now, f"1370{next(_phones):07d}") for _ in range(2)
            ]
            self.balance = dict.fromkeys(self.members, 1000)
            with self.db.unit_of_work() as s:
                for mid in self.members:
                    flows.earn(
                        s, self._ctx(s), mid, points=1000, source_type="t", source_id=str(mid)
                    )
            self.on_hand = dict.fromkeys(WAREHOUSES, 0)
            self.reserved = dict.fromkeys(WAREHOUSES, 0)
            #: code → [member, quantity, warehouse, delivery, status, points, code expiry]
            self.orders: dict[str, list] = {}

        def _ctx(self, s):
            return service.make_ctx(s, ACTOR, self.now, TZ)

        def _try(self, fn) -> object:
            try:
                with self.db.unit_of_work() as s:
                    return fn(s)
            except PatronError as exc:
                return exc

        def _codes(self, status: str | None = None) -> list[str]:
            return sorted(c for c, o in self.orders.items() if status in (None, o[4]))

        # ---- operators

        @rule(wh=st.sampled_from(WAREHOUSES), n=st.integers(1, 4))
        def receipt(self, wh, n):
            self._try(lambda s: stock.receive(s, self._ctx(s), self.gift, wh, n))
            self.on_hand[wh] += n

        @rule(wh=st.sampled_from(WAREHOUSES), delta=st.integers(-4, 4).filter(bool))
        def adjust(self, wh, delta):
            res = self._try(lambda s: stock.adjust(s, self._ctx(s), self.gift, wh, delta, "count"))
            ok = self.on_hand[wh] - self.reserved[wh] + delta >= 0
            assert (res is None) == ok, res
            if ok:
                self.on_hand[wh] += delta
            else:
                assert isinstance(res, PatronError) and res.code == "stock_below_zero"

        @rule(a=st.sampled_from(WAREHOUSES), b=st.sampled_from(WAREHOUSES), n=st.integers(1, 4))
        def transfer(self, a, b, n):
            res = self._try(lambda s: stock.transfer(s, self._ctx(s), self.gift, a, b, n))
            ok = a != b and self.on_hand[a] - self.reserved[a] >= n
            assert (res is None) == ok, res
            if ok:
                self.on_hand[a] -= n
                self.on_hand[b] += n

        # ---- members and the desk

        @rule(m=st.integers(0, 1), q=st.integers(1, 3), ship=st.booleans())
        def reserve(self, m, q, ship):
            mid = self.members[m]

            def go(s):
                member = s.get(Member, mid)
                req = redemptions.RedeemRequest(
                    gift_code=self.gift, quantity=q, delivery="ship" if ship else "pickup"
                )
                return redemptions.redeem(s, self._ctx(s), member, req)[0].code

            res = self._try(go)
            wh = next((w for w in WAREHOUSES if self.on_hand[w] - self.reserved[w] >= q), None)
            if wh is None:
                assert isinstance(res, PatronError) and res.code == "out_of_stock", res
            elif self.balance[mid] < self.price * q:
                assert isinstance(res, PatronError) and res.code == "insufficient_points", res
            else:
                assert isinstance(res, str), res
                self.reserved[wh] += q
                self.balance[mid] -= self.price * q
                self.last_redeemed = self.now
                self.orders[res] = [
                    mid,
                    q,
                    wh,
                    "ship" if ship else "pickup",
                    "reserved",
                    self.price * q,
                    self.now + timedelta(days=MallSettings().code_valid_days),
                ]

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def cancel(self, data):
            code = data.draw(st.sampled_from(self._codes()))
            o = self.orders[code]
            res = self._try(lambda s: redemptions.cancel(s, self._ctx(s), code)[0].status)
            if o[4] == "reserved":
                assert res == "cancelled", res
                o[4] = "cancelled"
                self.reserved[o[2]] -= o[1]
                self.balance[o[0]] += o[5]
            else:
                assert isinstance(res, PatronError) and res.status == 409, res

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def fulfil(self, data):
            code = data.draw(st.sampled_from(self._codes()))
            o = self.orders[code]
            res = self._try(lambda s: redemptions.verify(s, self._ctx(s), code, "SH001")[0].status)
            if o[4] == "reserved" and o[3] == "pickup" and self.now < o[6]:
                assert res == "fulfilled", res
                o[4] = "fulfilled"
                self.reserved[o[2]] -= o[1]
                self.on_hand[o[2]] -= o[1]
            else:
                assert isinstance(res, PatronError) and res.status == 409, res

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def ship(self, data):
            code = data.draw(st.sampled_from(self._codes()))
            o = self.orders[code]
            res = self._try(
                lambda s: redemptions.ship(s, self._ctx(s), code, "SF", "SF0001")[0].status
            )
            if o[4] == "reserved" and o[3] == "ship":
                assert res == "shipped", res
                o[4] = "shipped"
                self.reserved[o[2]] -= o[1]
                self.on_hand[o[2]] -= o[1]
            else:
                assert isinstance(res, PatronError) and res.status == 409, res

        @precondition(lambda self: self._codes("shipped"))
        @rule(data=st.data())
        def receive(self, data):
            code = data.draw(st.sampled_from(self._codes("shipped")))
            res = self._try(lambda s: redemptions.receive(s, self._ctx(s), code)[0].status)
            assert res == "received", res
            self.orders[code][4] = "received"

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), reason=st.sampled_from(["", "broken on arrival"]))
        def return_gift(self, data, reason):
            code = data.draw(st.sampled_from(self._codes()))
            o = self.orders[code]
            res = self._try(
                lambda s: redemptions.return_gift(s, self._ctx(s), code, reason)[0].status
            )
            if o[4] in ("shipped", "received"):
                assert res == "returned", res
                o[4] = "returned"
                self.on_hand[o[2]] += o[1]
                self.balance[o[0]] += o[5]
            else:
                assert isinstance(res, PatronError) and res.status == 409, res

        @rule()
        def release_unclaimed(self):
            jobs.run_release_unclaimed(self.db, self.now, TZ)
            for o in self.orders.values():
                if o[4] == "reserved" and o[3] == "pickup" and o[6] <= self.now:
                    o[4] = "cancelled"
                    self.reserved[o[2]] -= o[1]
                    self.balance[o[0]] += o[5]

        # jumps stay well inside the year earned points live (ExpiryPolicy: 365 days)
        @precondition(lambda self: self.now - self.created < timedelta(days=200))
        @rule(days=st.sampled_from([0, 29, 31, 91]))
        def markdown(self, days):
            self.now += timedelta(days=days)
            with self.db.unit_of_work() as s:
                pricing.apply_markdowns(s, self._ctx(s))
            settings_now = MallSettings()
            slow_before = self.now - timedelta(days=settings_now.slow_mover_days)
            slow = self.created < slow_before and (
                self.last_redeemed is None or self.last_redeemed < slow_before
            )
            due = self.last_markdown is None or self.last_markdown <= self.now - timedelta(
                days=settings_now.markdown_every_days
            )
            if slow and due:
                new = domain.marked_down(
                    PRICE,
                    self.price,
                    settings_now.markdown_step_percent,
                    settings_now.markdown_floor_percent,
                )
                if new < self.price:
                    self.price, self.last_markdown = new, self.now

        @rule(hours=st.integers(1, 48))
        def clock(self, hours):
            self.now += timedelta(hours=hours)

        # ---- after every step

        @invariant()
        def agrees(self):
            with self.db.unit_of_work() as s:
                rows = s.query(Stock).filter(Stock.gift_id == self.gift_id).all()
                got = {r.warehouse: (r.on_hand, r.reserved) for r in rows}
                for wh in WAREHOUSES:
                    assert got.get(wh, (0, 0)) == (self.on_hand[wh], self.reserved[wh]), wh
                for mid, pts in self.balance.items():
                    assert queries.balance(s, mid, self.now).available == pts
                assert s.get(Gift, self.gift_id).points == self.price
                assert checks.run_all(s) == []

    assert MallSettings().default_order == list(WAREHOUSES)
    run_state_machine_as_test(
        MallMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


@pytest.mark.timeout(1200)
def test_stock_and_redemptions_match_the_model(database) -> None:
    run_machine(database)
