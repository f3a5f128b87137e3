"""The mall under real concurrency on PostgreSQL: threads released together by a barrier."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron import checks
from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.errors import PatronError
from patron.ledger.service import Ctx
from patron.mall import redemptions, service, stock
from patron.mall.schemas import GiftIn
from patron.members.models import Member
from tests.ledger.test_ledger_concurrency_pg import ACTOR, TZ, earn, new_member, run_together

pytestmark = pytest.mark.postgres_only


def _ctx(s, now) -> Ctx:
    return service.make_ctx(s, ACTOR, now, TZ)


def _setup(db, now, *, units: int, members: int, points: int = 1000) -> list[int]:
    with db.unit_of_work() as s:
        for code in ("SH001", "BJ001"):
            catalog.upsert_store(
                s, ACTOR, StoreIn(code=code, name=code, region="East China"), now=now
            )
        service.upsert_gift(
            s, ACTOR, GiftIn(code="MUG", name="Mug", category="home", points=100), now=now
        )
        stock.receive(s, _ctx(s, now), "MUG", "east", units)
    ids = [new_member(db, now, f"1380000{i:04d}") for i in range(members)]
    for mid in ids:
        earn(db, mid, points, f"seed{mid}", now)
    return ids


def _redeem(db, now, mid, **req):
    with db.unit_of_work() as s:
        member = s.get(Member, mid)
        r, _ = redemptions.redeem(
            s, _ctx(s, now), member, redemptions.RedeemRequest(gift_code="MUG", **req)
        )
        return r.code


def _codes(results) -> tuple[list, list]:
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if not isinstance(r, str)]
    return won, lost


def _clean(db) -> None:
    with db.unit_of_work() as s:
        assert checks.run_all(s) == []


@pytest.mark.parametrize("flash", [False, True])
def test_200_threads_for_the_last_10_units_exactly_10(pg_database, clock, flash):
    now = clock.now()
    ids = _setup(pg_database, now, units=10 if not flash else 50, members=200)
    req = {}
    if flash:
        with pg_database.unit_of_work() as s:
            sale = redemptions.create_flash_sale(
                s,
                _ctx(s, now),
                "MUG",
                points=10,
                quantity=10,
                per_member_limit=1,
                starts_at=now,
                ends_at=now + timedelta(hours=1),
            )
            req = {"flash_sale_id": sale.id}
    results = run_together(200, lambda i: _redeem(pg_database, now, ids[i], **req))
    won, lost = _codes(results)
    assert len(won) == 10
    want = "flash_sold_out" if flash else "out_of_stock"
    assert all(isinstance(e, PatronError) and e.code == want for e in lost), lost[:3]
    _clean(pg_database)


def test_a_cancel_racing_a_verification_one_wins(pg_database, clock):
    now = clock.now()
    ids = _setup(pg_database, now, units=20, members=1, points=5000)
    for _ in range(5):
        code = _redeem(pg_database, now, ids[0], store_code="SH001")

        def act(i: int, code: str = code) -> str:
            with pg_database.unit_of_work() as s:
                if i == 0:
                    r, _ = redemptions.cancel(s, _ctx(s, now), code, "race")
                else:
                    r, _ = redemptions.verify(s, _ctx(s, now), code, "SH001")
                return r.status

        results = run_together(2, act)
        won = [r for r in results if isinstance(r, str)]
        assert len(won) == 1, results
        lost = next(r for r in results if not isinstance(r, str))
        assert isinstance(lost, PatronError) and lost.status == 409
    _clean(pg_database)


def test_one_code_verified_at_two_stores_at_once_counts_once(pg_database, clock):
    now = clock.now()
    ids = _setup(pg_database, now, units=20, members=1, points=5000)
    for _ in range(5):
        code = _redeem(pg_database, now, ids[0])

        def verify(i: int, code: str = code) -> str:
            with pg_database.unit_of_work() as s:
                r, _ = redemptions.verify(s, _ctx(s, now), code, ("SH001", "BJ001")[i])
                return str(r.verified_store)

        results = run_together(2, verify)
        won = [r for r in results if isinstance(r, str)]
        assert len(won) == 1, results
        lost = next(r for r in results if not isinstance(r, str))
        assert isinstance(lost, PatronError) and lost.code == "code_used"
    _clean(pg_database)
