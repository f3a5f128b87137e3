"""The member scores page says which churn risk the scores carry and by how much the churn
model beat, or did not beat, the recency-only baseline (SQLite and PostgreSQL, en and zh-CN):
on histories where leaving shows before the last purchase the model is used; on histories
where recency is all there is it is not."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from patron.analytics import scores as svc
from tests.analytics.history import add_members, add_orders, simulate_fading, simulate_recency_only
from tests.web.test_analytics_pages import TODAY, _open

SH = ZoneInfo("Asia/Shanghai")


def _scored(database, clock, history, seed):
    with database.unit_of_work() as s:
        ids = add_members(s, 400, at=clock.now() - timedelta(days=800))
        add_orders(s, history(ids, until=TODAY, seed=seed))
        run = svc.run_scores(s, now=clock.now(), tz=SH)
        ev = svc.evaluate(s, now=clock.now(), tz=SH)
    assert run.churn is not None and ev.churn is not None
    return run


def _said(page: str, attribute: str) -> tuple[str, str]:
    """The value of the data attribute and the words of the paragraph it marks."""
    m = re.search(rf'<p {attribute}="([^"]*)">(.*?)</p>', page, re.S)
    assert m, attribute
    return m.group(1), " ".join(html.unescape(m.group(2)).split())


def test_the_model_is_used_and_the_page_says_by_how_much(client, database, clock):
    run = _scored(database, clock, simulate_fading, 7)
    assert run.churn_source == "model"
    ch = run.churn
    numbers = (f"{ch.margin:.3f}", f"{ch.auc:.3f}", f"{ch.baseline_auc:.3f}")
    r = _open(client, database, clock)
    assert r.status_code == 200
    source, words = _said(r.text, "data-churn-source")
    assert source == "model"
    assert words == (
        "Each member's churn risk comes from the churn model: on the last 90 days it told "
        "leavers from stayers better than the days since the last purchase alone, by "
        "{} AUC points ({} against {}).".format(*numbers)
    )
    # The holdout check of `patron analytics evaluate` agrees (same history, same split).
    used, words = _said(r.text, "data-churn")
    assert used == "used"
    assert f"beats the recency-only baseline by {numbers[0]} AUC points" in words
    # The page's title is its title (no page markup in it).
    assert re.search(r"<title>\s*Member scores · Patron</title>", r.text)
    client.headers["Accept-Language"] = "zh-CN"
    zh = client.get("/console/analytics").text
    _, words = _said(zh, "data-churn-source")
    assert words == (
        "每位会员的流失风险来自流失模型：在最近 90 天里，它区分流失与留存会员的效果优于只看"
        "距上次购买的天数，AUC 高出 {}（{} 对 {}）。".format(*numbers)
    )
    _, words = _said(zh, "data-churn")
    assert f"流失模型的 AUC 比仅用最近消费的基线高 {numbers[0]}" in words


def test_on_recency_only_history_the_page_says_the_model_is_not_used(client, database, clock):
    run = _scored(database, clock, simulate_recency_only, 5)
    assert run.churn_source == "p_alive"
    ch = run.churn
    r = _open(client, database, clock)
    source, words = _said(r.text, "data-churn-source")
    assert source == "p_alive"
    assert words == (
        "Each member's churn risk is 1 − P(alive): on the last 90 days the churn model was not "
        "shown to tell leavers from stayers better than the days since the last purchase "
        f"alone (AUC {ch.auc:.3f} against {ch.baseline_auc:.3f}, a difference of "
        f"{ch.margin:+.3f}), so it is not used."
    )
    used, _ = _said(r.text, "data-churn")
    assert used == "not-used"
    client.headers["Accept-Language"] = "zh-CN"
    _, words = _said(client.get("/console/analytics").text, "data-churn-source")
    assert words.startswith("每位会员的流失风险取 1 − 存活概率")
    assert f"相差 {ch.margin:+.3f}）" in words
