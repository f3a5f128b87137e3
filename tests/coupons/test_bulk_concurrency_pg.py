"""Set-based issues under real concurrency on PostgreSQL: several audience issues of one limited
template at once never pass its quantity; the same issue sent at once issues once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.checks import run_all
from patron.coupons import bulk
from patron.coupons.models import Coupon, CouponTemplate
from patron.ledger.service import Ctx
from patron.members.models import Member
from tests.coupons.test_coupons_concurrency_pg import SH, _members, _run, _template

pytestmark = pytest.mark.postgres_only


def _issue(db, clock, key):
    with db.unit_of_work() as s:
        ctx = Ctx(Principal.system("t"), clock.now(), SH)
        return bulk.issue_to_audience(
            s, ctx, "LAST", select(Member.id), reason="manual", key=key
        ).issued


def test_audience_issues_at_once_stay_within_the_quantity(pg_database, clock):
    _template(pg_database, clock, 20)
    _members(pg_database, clock, 30)
    # eight different issues (keys) to 30 members each, at once: 20 coupons exist
    results = _run(8, lambda i: _issue(pg_database, clock, f"manual:B{i}"))
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 20
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Coupon)) == 20
        assert s.scalar(select(CouponTemplate.issued_count)) == 20
        assert run_all(s, now=clock.now()) == []


def test_the_same_audience_issue_at_once_issues_once(pg_database, clock):
    _template(pg_database, clock, None)
    _members(pg_database, clock, 20)
    results = _run(6, lambda _i: _issue(pg_database, clock, "manual:SAME"))
    assert sorted(results) == [0, 0, 0, 0, 0, 20]
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Coupon)) == 20
        assert run_all(s, now=clock.now()) == []
