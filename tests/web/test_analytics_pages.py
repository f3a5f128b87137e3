"""The member scores page (SQLite and PostgreSQL): before any run, with no purchases, one
member, and a scored population with its holdout check; segment names in both languages."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

from patron.analytics import rfm
from patron.analytics import scores as svc
from patron.web.console.analytics import SEGMENT_NAMES
from tests.analytics.history import add_members, add_orders, simulate
from tests.web.test_pages import _sign_in, _staff

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 3, 1)
PO = Path(__file__).resolve().parents[2] / "src/patron/web/locale/zh_CN/LC_MESSAGES/analytics.po"


def _open(client, database, clock, lang="en"):
    client.headers["Accept-Language"] = lang
    user = _staff(database, clock, "analyst")
    assert _sign_in(client, user).status_code == 303
    return client.get("/console/analytics")


def _run(database, clock, evaluate=False):
    with database.unit_of_work() as s:
        svc.run_scores(s, now=clock.now(), tz=SH)
        if evaluate:
            svc.evaluate(s, now=clock.now(), tz=SH)


def test_before_any_run(client, database, clock):
    r = _open(client, database, clock)
    assert r.status_code == 200
    assert 'data-state="never-scored"' in r.text
    assert "patron jobs run scores" in r.text
    assert "patron analytics evaluate" in r.text
    assert 'id="rfm-data"' not in r.text


def test_no_purchases(client, database, clock):
    _run(database, clock, evaluate=True)
    r = _open(client, database, clock)
    assert r.status_code == 200
    assert 'data-state="no-purchases"' in r.text
    assert "No member bought anything on or before" in r.text


def test_one_member(client, database, clock):
    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=clock.now() - timedelta(days=10))
        add_orders(s, [(m, TODAY - timedelta(days=2), 5000)])
    _run(database, clock)
    r = _open(client, database, clock)
    assert r.status_code == 200
    assert 'data-state="missing"' in r.text
    assert "Only 0 of 1 customers bought more than once" in r.text
    assert 'data-segment="hibernating"' in r.text
    assert "¥50.00" in r.text


def test_population_in_chinese(client, database, clock):
    with database.unit_of_work() as s:
        ids = add_members(s, 300, at=clock.now() - timedelta(days=800))
        add_orders(s, simulate(ids, until=TODAY))
    _run(database, clock, evaluate=True)
    r = _open(client, database, clock, lang="zh-CN")
    assert r.status_code == 200
    assert 'data-state="missing"' not in r.text
    data = json.loads(re.search(r'id="rfm-data">(.*?)</script>', r.text, re.S).group(1))
    assert len(data["cells"]) == 25
    with database.unit_of_work() as s:
        scored = svc.overview(s).scored
    assert sum(c["members"] for c in data["cells"]) == scored
    assert {c["segment"] for c in data["cells"]} == {zh for _, zh in rfm.SEGMENTS.values()}
    assert "BG/NBD" in r.text
    assert "Gamma-Gamma" in r.text
    assert r.text.count('data-table="holdout"') == 2
    assert "留出期检验" in r.text
    assert 'data-table="lift"' in r.text
    assert "data-churn=" in r.text


def test_segment_names_match_the_catalogue():
    with PO.open("rb") as f:
        catalogue = read_po(f, locale="zh_CN")
    for key, (en, zh) in rfm.SEGMENTS.items():
        assert SEGMENT_NAMES[key] == en
        assert catalogue[en].string == zh


def test_cohorts_and_funnel_on_the_page(client, database, clock):
    r = _open(client, database, clock)
    assert 'data-state="no-members"' in r.text
    assert 'data-cohort="2026-03"' in r.text
    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=clock.now() - timedelta(days=40))
        add_orders(s, [(m, TODAY - timedelta(days=35), 5000), (m, TODAY, 5000)])
    r = client.get("/console/analytics")
    assert 'data-state="no-members"' not in r.text
    assert 'data-panel="funnel"' in r.text
    assert "100.0%" in r.text


def test_spend_curves_points_funnel_and_attribution_on_the_page(client, database, clock):
    r = _open(client, database, clock, lang="zh-CN")
    assert r.text.count('data-state="none"') == 2  # no registrations, no first purchases
    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=clock.now() - timedelta(days=40))  # January
        add_orders(s, [(m, TODAY - timedelta(days=35), 5000), (m, TODAY, 5000)])
    r = client.get("/console/analytics")
    assert "人均累计净消费" in r.text and "积分漏斗" in r.text and "会员来源" in r.text
    row = re.search(r'<tr data-spend="2026-01">(.*?)</tr>', r.text, re.S)
    assert row is not None
    assert re.findall(r"¥[\d,.]+", row.group(1)) == ["¥50.00", "¥50.00", "¥100.00"]
    assert re.search(r'data-value="earned">0<', r.text)
    panel = r.text.split('data-panel="attribution"', 1)[1].split("</section>", 1)[0]
    assert 'data-state="none"' not in panel
    registrations = panel.split('data-attribution="first-orders"')[0]
    assert re.search(r'data-key="web"><td>官网</td><td class="num">1</td>', registrations)
    assert re.search(r'data-key=""><td>无门店</td><td class="num">1</td>', registrations)
    firsts = panel.split('data-attribution="first-orders"')[1]
    assert re.search(r'data-key="store"><td>门店</td><td class="num">1</td>', firsts)
