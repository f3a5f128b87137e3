"""A campaign's results as a CSV / Excel download (SQLite and PostgreSQL): hand-made orders
where the campaign group spends more than the control group give a known, non-zero ROI."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

from sqlalchemy import select, update

from patron.campaigns import experiment
from patron.campaigns.models import Campaign
from patron.members.models import Member
from tests.analytics.history import add_orders
from tests.web.test_config_pages import operator  # noqa: F401 - the fixture

DAY = date(2026, 3, 1)  # the clock's business day, inside the campaign's week
WEEK = {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-07"}


def test_results_download_with_a_known_roi(client, database, auth_headers, make_member, operator):  # noqa: F811
    h = auth_headers("operator")
    body = {"code": "spring", "name": "Spring", "schedule": WEEK, "control_bp": 5_000}
    assert client.post("/api/v1/campaigns", json=body, headers=h).status_code == 201
    numbers = [make_member() for _ in range(8)]
    with database.unit_of_work() as s:
        ids = s.scalars(select(Member.id).where(Member.member_no.in_(numbers))).all()
        groups = {i: experiment.group_of("campaign:spring", i, 5_000) for i in ids}
        treated = [i for i in ids if groups[i] == "treatment"]
        control = [i for i in ids if groups[i] == "control"]
        assert treated and control
        # campaign members spend ¥300 each, control members ¥100: ¥200 more per treated member
        add_orders(s, [(i, DAY, 30_000 if i in treated else 10_000) for i in ids])
        s.execute(update(Campaign).where(Campaign.code == "spring").values(other_cost_fen=5_000))
    incremental = 20_000 * len(treated)
    roi = incremental / 5_000

    r = client.get("/console/campaigns/spring/results/export?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = dict(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows["Campaign group: Members"] == str(len(treated))
    assert rows["Control group: Sales (fen)"] == str(10_000 * len(control))
    assert rows["Cost (fen)"] == "5000"
    assert rows["Sales beyond the control group (fen)"] == str(incremental)
    assert float(rows["Return on cost"]) == roi > 0
    assert (
        'href="/console/campaigns/spring/results/export?format=xlsx"'
        in client.get("/console/campaigns/spring").text
    )

    client.headers["Accept-Language"] = "zh-CN"
    x = client.get("/console/campaigns/spring/results/export?format=xlsx")
    assert x.status_code == 200
    # constant-memory workbooks keep strings inline in the sheet
    sheet = zipfile.ZipFile(io.BytesIO(x.content)).read("xl/worksheets/sheet1.xml").decode()
    assert "超出对照组的销售额（分）" in sheet and f"<v>{incremental}</v>" in sheet
    assert "成本（分）" in sheet

    assert client.get("/console/campaigns/nosuch/results/export").status_code == 404
