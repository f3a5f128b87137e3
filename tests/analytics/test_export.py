"""The member-scores export (SQLite and PostgreSQL): every stored column and, right after the
churn risk, the loyalty score 100 × (1 − churn risk), in both modes; empty where there is no
churn risk."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from patron.analytics import export
from patron.analytics import scores as svc
from patron.analytics.churn import loyalty_score
from patron.analytics.models import MemberScore
from tests.analytics.history import add_members, add_orders, simulate_fading
from tests.analytics.test_scores import TODAY
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")
KEY = b"k" * 32


def _scored(database) -> int:
    with database.unit_of_work() as s:
        ids = add_members(s, 200, at=START - timedelta(days=800))
        add_orders(s, simulate_fading(ids, until=TODAY))
        svc.run_scores(s, now=START, tz=SH)
        # One member without a churn risk (as when no model could score).
        none = update(MemberScore).where(MemberScore.member_id == ids[0]).values(churn_risk=None)
        s.execute(none)
    return ids[0]


def test_loyalty_score_rule():
    assert loyalty_score(None) is None
    assert loyalty_score(0.0) == 100 and loyalty_score(1.0) == 0
    assert loyalty_score(0.254) == 75 and loyalty_score(0.256) == 74


def test_scores_csv_carries_the_loyalty_score_in_both_modes(database):
    first = _scored(database)
    for key in (None, KEY):
        with database.unit_of_work() as s:
            text = "".join(export.scores_csv(s, key=key, batch=50))
        rows = list(csv.DictReader(io.StringIO(text)))
        header = next(csv.reader(io.StringIO(text)))
        assert header[header.index("churn_risk") + 1] == "loyalty_score"
        assert header[0] == ("member_no" if key is None else "pseudonym")
        assert len(rows) > 100
        for row in rows:
            if row["churn_risk"] == "":
                assert row["loyalty_score"] == ""
            else:
                assert int(row["loyalty_score"]) == round(100 * (1 - float(row["churn_risk"])))
        assert sum(r["loyalty_score"] == "" for r in rows) == 1
        assert len({r["loyalty_score"] for r in rows}) > 10
        if key is None:
            assert rows[0]["member_no"] == f"T{first:09d}" and rows[0]["loyalty_score"] == ""


def test_scores_batches_carry_the_loyalty_score(database):
    _scored(database)
    with database.unit_of_work() as s:
        rows = [r for part in export.scores_batches(s, key=KEY, batch=40) for r in part]
    risk = 1 + export.COLUMNS.index("churn_risk")
    segment = 1 + export.COLUMNS.index("segment")
    assert all(len(r) == 1 + len(export.COLUMNS) for r in rows)
    assert rows[0][risk] == "" and rows[0][risk + 1] == ""
    for r in rows[1:]:
        assert r[risk + 1] == loyalty_score(r[risk])
        assert isinstance(r[risk + 1], int)
    assert all(not str(r[segment]).islower() for r in rows)  # named, not the key
