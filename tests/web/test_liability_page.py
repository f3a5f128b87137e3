"""The points liability page (SQLite and PostgreSQL): what is missing on an empty database, then
figures after points are earned; both languages."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.members.models import Member
from tests.web.test_pages import _sign_in, _staff

SH = ZoneInfo("Asia/Shanghai")


def _open(client, database, clock, lang="en"):
    client.headers["Accept-Language"] = lang
    user = _staff(database, clock, "analyst")
    assert _sign_in(client, user).status_code == 303
    return client.get("/console/analytics/liability")


def test_empty_database_says_what_is_missing(client, database, clock):
    r = _open(client, database, clock)
    assert r.status_code == 200
    assert 'data-state="missing"' in r.text
    assert "No points have been issued yet" in r.text
    assert 'data-month="2026-03"' in r.text
    scores = client.get("/console/analytics")
    assert 'href="/console/analytics/liability"' in scores.text


def test_figures_in_chinese(client, database, clock, make_member):
    make_member()
    with database.unit_of_work() as s:
        member_id = s.scalars(select(Member.id)).one()
        ctx = ledger.Ctx(Principal.system("tests"), clock.now(), SH)
        flows.earn(s, ctx, member_id, points=12345, source_type="test", source_id="g")
    r = _open(client, database, clock, lang="zh-CN")
    assert r.status_code == 200
    assert "积分负债" in r.text
    assert "¥123.45" in r.text
    assert "尚无积分到达有效期" in r.text
    assert "尚未发放任何积分" not in r.text
