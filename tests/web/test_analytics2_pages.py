"""Pages of the second analytics round (SQLite and PostgreSQL): the portal's "for you" and
replenishment hint, the anomaly alerts page and the analytics exports."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.analytics import scores as svc
from patron.members.models import Member
from tests.analytics.history import add_baskets, add_members
from tests.analytics.test_personal import TODAY, _catalogue
from tests.web.test_portal_pages import portal_sign_in

SH = ZoneInfo("Asia/Shanghai")


def test_portal_home_suggests_what_is_due_and_products(client, app, database, clock, make_member):
    number = make_member("13912340000")
    with database.unit_of_work() as s:
        _catalogue(s)
        me = s.scalar(select(Member.id).where(Member.member_no == number))
        others = add_members(s, 30, start_id=1000, at=clock.now() - timedelta(days=400))
        baskets = []
        for k, m in enumerate([me, *others]):
            for n in range(4):
                lines = [("MILK1", "milk")]
                if n == 0:
                    lines.append(("CHIPS", "snack"))
                    if m != me:
                        lines.append(("DIP", "snack"))
                baskets.append((m, TODAY - timedelta(days=8 + 10 * n + (k % 3)), lines))
        add_baskets(s, baskets)
        svc.run_scores(s, now=clock.now(), tz=SH)
    portal_sign_in(client, app, "13912340000")
    page = client.get("/portal/")
    assert page.status_code == 200
    # Milk every 10 days, last 8 days ago: due in 2 days.
    assert 'data-hint="replenish"' in page.text and "Milk" in page.text
    assert 'data-sku="DIP"' in page.text and "Salsa dip" in page.text
    client.headers["Accept-Language"] = "zh-CN"
    zh = client.get("/portal/").text
    assert "为你推荐" in zh and "你可能很快又需要" in zh


def _console(client, database, clock, role="analyst"):
    from tests.web.test_pages import _sign_in, _staff

    client.headers["Accept-Language"] = "en"
    assert _sign_in(client, _staff(database, clock, role)).status_code == 303
    return client


def _csv(text: str) -> list[list[str]]:
    import csv
    import io

    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_alerts_page_lists_a_spike_in_sentences(client, database, clock):
    from patron.analytics import alerts
    from tests.analytics.test_alerts import _history

    c = _console(client, database, clock)
    empty = c.get("/console/analytics/alerts")
    assert empty.status_code == 200 and 'data-state="no-alerts"' in empty.text
    with database.unit_of_work() as s:
        _history(s, spike=240)
        alerts.check(s, now=clock.now(), tz=SH)
    page = c.get("/console/analytics/alerts").text
    assert 'data-alert="orders"' in page
    assert "Orders:" in page and "240 where about 61 was expected" in page
    c.headers["Accept-Language"] = "zh-CN"
    zh = c.get("/console/analytics/alerts").text
    assert "异常提醒" in zh and "订单" in zh
    rows = _csv(c.get("/console/analytics/export/alerts").text)
    assert rows[0][:4] == ["日期", "指标", "门店", "数值"]
    assert rows[1][1:4] == ["订单", "", "240"]


def test_every_report_downloads_as_csv_and_excel(client, database, clock):
    import zipfile
    from io import BytesIO

    from patron.analytics import export
    from tests.analytics.history import add_orders, simulate

    with database.unit_of_work() as s:
        ids = add_members(s, 300, at=clock.now() - timedelta(days=800))
        add_orders(s, simulate(ids, until=TODAY))
        svc.run_scores(s, now=clock.now(), tz=SH)
    c = _console(client, database, clock, "admin")
    page = c.get("/console/analytics").text
    for report in ("rfm", "segments", "cohorts", "funnel", "churn-lift", "alerts", "scores"):
        assert f'data-export-report="{report}"' in page
        r = c.get(f"/console/analytics/export/{report}", params={"format": "csv"})
        assert r.status_code == 200, report
        assert f'filename="{report}.csv"' in r.headers["content-disposition"]
        x = c.get(f"/console/analytics/export/{report}", params={"format": "xlsx"})
        assert x.status_code == 200 and zipfile.ZipFile(BytesIO(x.content)).testzip() is None
    liability = c.get("/console/analytics/liability").text
    for report in ("liability-tiers", "liability-ages", "liability-months"):
        assert f"/console/analytics/export/{report}?format=csv" in liability
        assert c.get(f"/console/analytics/export/{report}").status_code == 200
    grid = _csv(c.get("/console/analytics/export/rfm").text)
    assert grid[0] == ["Recency score", "Frequency score", "Segment", "Members"]
    assert len(grid) == 26 and sum(int(r[3]) for r in grid[1:]) == 300 - _unscored(database)
    lift = _csv(c.get("/console/analytics/export/churn-lift").text)
    assert [r[0] for r in lift[1:]] == [str(k) for k in range(1, 11)]
    scores = _csv(c.get("/console/analytics/export/scores").text)
    assert scores[0][0] == "Member number" and scores[1][0] == "T000000001"
    anonymous = c.get("/console/analytics/export/scores", params={"anonymized": "true"})
    assert 'filename="scores-anonymized.csv"' in anonymous.headers["content-disposition"]
    rows = _csv(anonymous.text)
    key = c.app.state.settings.keys()["index_key"]
    assert rows[0][0] == "Pseudonym"
    assert rows[1][0] == export.pseudonym(key, "T000000001")
    # The loyalty score follows the churn risk, in both modes and both formats.
    for table in (scores, rows):
        at = table[0].index("Churn risk")
        assert table[0][at + 1] == "Loyalty score"
        for row in table[1:]:
            assert row[at + 1] == ("" if row[at] == "" else str(round(100 * (1 - float(row[at])))))
    c.headers["Accept-Language"] = "zh-CN"
    x = c.get("/console/analytics/export/scores", params={"format": "xlsx", "anonymized": "true"})
    sheet = zipfile.ZipFile(BytesIO(x.content)).read("xl/worksheets/sheet1.xml").decode()
    assert "流失风险" in sheet and "忠诚度评分" in sheet
    c.headers["Accept-Language"] = "en"
    assert "T000000001" not in anonymous.text
    assert c.get("/console/analytics/export/nosuch").status_code == 404


def _unscored(database) -> int:
    from sqlalchemy import func

    from patron.analytics.models import MemberScore

    with database.unit_of_work() as s:
        return 300 - s.scalar(select(func.count()).select_from(MemberScore))


def test_model_messages_read_in_both_languages():
    from patron.analytics import clv
    from patron.web.console import model_words

    # Every shape the models produce is recognised (the sentences come from the models).
    fit = clv.fit_bgnbd(clv.summaries([0, 1], [0, 3], [10, 10]), min_repeat_buyers=30)
    (problem,) = fit.problems
    assert model_words.translate("en", problem) == (
        "Only 1 of 2 customers bought more than once; at least 30 repeat buyers are needed "
        "to fit the model."
    )
    assert model_words.translate("zh_CN", problem) == (
        "2 位顾客中只有 1 位购买过不止一次；拟合模型至少需要 30 位复购顾客。"
    )
    line = "churn model: the holdout has 12 members; at least 50 are needed"
    assert (
        model_words.translate("zh_CN", line) == "流失模型：检验集只有 12 位会员；至少需要 50 位。"
    )
    assert model_words.translate("zh_CN", "BG/NBD: " + problem).startswith("BG/NBD：2 位顾客")
    assert model_words.translate("zh_CN", "something new") == "something new"
    ggfit = clv.fit_gamma_gamma([1], [100.0], min_repeat_buyers=30)
    assert model_words.translate("zh_CN", ggfit.problems[0]).startswith("只有 1 位顾客")


def test_cohort_spend_funnels_and_attribution_exports(client, database, clock):
    from datetime import date

    from tests.analytics.history import add_orders

    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=clock.now() - timedelta(days=40))  # a January cohort
        add_orders(s, [(m, date(2026, 1, 25), 5000), (m, date(2026, 3, 1), 2001)])
    c = _console(client, database, clock, "admin")
    page = c.get("/console/analytics").text
    for report in ("points-funnel", "attribution"):
        assert f'data-export-report="{report}"' in page
    rows = _csv(c.get("/console/analytics/export/cohorts").text)
    assert rows[0][-2:] == ["Net spend (fen)", "Net spend per member to date (fen)"]
    jan = [r for r in rows[1:] if r[0] == "2026-01"]
    assert [(r[2], r[5], r[6]) for r in jan] == [
        ("0", "5000", "5000"), ("1", "0", "5000"), ("2", "2001", "7001"),
    ]  # fmt: skip
    assert [r[6] for r in rows[1:] if r[0] == "2026-03"] == [""]  # nobody registered
    points = _csv(c.get("/console/analytics/export/points-funnel").text)
    assert points[1:] == [["Registered", "1", ""], ["With points earned", "0", "0.0"],
                          ["With points redeemed", "0", ""]]  # fmt: skip
    funnel = _csv(c.get("/console/analytics/export/funnel").text)
    assert [r[:2] for r in funnel[1:]] == [
        ["Registered", "1"], ["With a first purchase", "1"], ["With a second purchase", "1"],
    ]  # fmt: skip
    c.headers["Accept-Language"] = "zh-CN"
    steps = [r[0] for r in _csv(c.get("/console/analytics/export/funnel").text)[1:]]
    assert steps == ["已注册", "完成首次购买", "完成第二次购买"]  # not the first-purchase bonus
    c.headers["Accept-Language"] = "en"
    sources = _csv(c.get("/console/analytics/export/attribution").text)
    assert sources[0] == ["Since month", "Counted", "Grouped by", "Channel or store", "Members",
                          "Share"]  # fmt: skip
    assert sources[1:] == [
        ["2025-10", "Registrations", "Channel", "web", "1", "1.0"],
        ["2025-10", "Registrations", "Store", "", "1", "1.0"],
        ["2025-10", "First purchases", "Channel", "store", "1", "1.0"],
        ["2025-10", "First purchases", "Store", "", "1", "1.0"],
    ]
