"""The member page's "Scores" card (SQLite and PostgreSQL): a scored member's stored scores and
the churn model's per-input explanation in both languages; an unscored member says so."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from patron.analytics.models import MemberScore, ModelRun
from patron.members.models import Member
from tests.analytics.history import add_orders
from tests.web.test_members_pages import staff  # noqa: F401

AS_OF = date(2026, 3, 1)
AS_OF_TIME = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
#: A hand-made fitted model (weight, mean, scale per input);
#: effect = weight × (value − mean) / scale
EXPLAIN = {
    "recency_days": {"weight": 0.8, "mean": 30.0, "scale": 10.0},  # 10 days → −1.6
    "purchase_days": {"weight": -0.5, "mean": 2.0, "scale": 1.0},  # 2 → 0
    "log_spend": {"weight": -0.2, "mean": math.log1p(4000) - 1, "scale": 1.0},  # → −0.2
    "tenure_days": {"weight": 0.1, "mean": 20.0, "scale": 10.0},  # 40 days → +0.2
    "recent_purchase_days": {"weight": -0.3, "mean": 1.0, "scale": 1.0},  # 2 → −0.3
}


def _score(database, member_no: str, source: str = "model") -> None:
    """Two purchase days (10 and 40 days before the scores' day, 4,000 fen in all), a stored
    score row, and the scores run whose churn model explains it."""
    with database.unit_of_work() as s:
        member_id = s.scalars(select(Member.id).where(Member.member_no == member_no)).one()
        add_orders(
            s,
            [
                (member_id, AS_OF - timedelta(days=10), 1_000),
                (member_id, AS_OF - timedelta(days=40), 3_000),
                # after the scores' day: not an input of the stored score
                (member_id, AS_OF + timedelta(days=1), 9_000),
            ],
        )
        s.add(
            MemberScore(
                member_id=member_id,
                as_of=AS_OF,
                recency_days=10,
                purchase_days=2,
                monetary_fen=4_000,
                r_score=4,
                f_score=2,
                m_score=3,
                segment="potential_loyalists",
                p_alive=0.9,
                expected_purchases=1.5,
                clv_fen=12_345,
                churn_risk=0.25,
                next_purchase_days=12.0,
            )
        )
        s.add(
            ModelRun(
                kind="scores",
                ran_at=AS_OF_TIME,
                as_of=AS_OF,
                members=1,
                report={
                    "settings": {"churn_window_days": 90},
                    "missing": [],
                    "churn_source": source,
                    "churn_explain": EXPLAIN,
                    "churn_intercept": 0.0,
                },
            )
        )


def _effects(page: str) -> list[tuple[str, float]]:
    return [
        (name, float(x))
        for name, x in re.findall(r'data-feature="(\w+)" data-log-odds="([-0-9.e]+)"', page)
    ]


def test_scored_member_sees_scores_and_why(staff, make_member, database):  # noqa: F811
    no = make_member()
    _score(database, no)
    c = staff("admin")
    page = c.get(f"/console/members/{no}").text
    assert 'id="scores"' in page
    assert re.search(r"data-loyalty>\s*75\s*<", page)
    assert 'data-segment="potential_loyalists"' in page and "Potential loyalists" in page
    assert "123.45" in page  # CLV in yuan
    effects = _effects(page)
    assert [n for n, _ in effects] == [
        "recency_days",
        "recent_purchase_days",
        "log_spend",
        "tenure_days",
        "purchase_days",
    ]
    assert dict(effects) == {
        "recency_days": -1.6,
        "recent_purchase_days": -0.3,
        "log_spend": -0.2,
        "tenure_days": 0.2,
        "purchase_days": 0.0,
    }
    assert "Lowers the churn risk (-1.60)" in page
    assert "Raises the churn risk (+0.20)" in page
    assert "Days with a purchase in the last 90 days" in page
    c.headers["Accept-Language"] = "zh-CN"
    zh = c.get(f"/console/members/{no}").text
    assert "忠诚度评分的依据" in zh and "降低流失风险（-1.60）" in zh
    assert "最近 90 天内有购买的天数" in zh and "潜力会员" in zh


def test_unscored_member_says_not_scored_yet(staff, make_member):  # noqa: F811
    no = make_member()
    c = staff("admin")
    page = c.get(f"/console/members/{no}").text
    assert 'data-scores="none"' in page and "Not scored yet" in page
    assert "data-loyalty" not in page
    c.headers["Accept-Language"] = "zh-CN"
    assert "尚未评分" in c.get(f"/console/members/{no}").text


def test_risk_from_the_purchase_model_has_no_per_input_explanation(staff, make_member, database):  # noqa: F811
    no = make_member()
    _score(database, no, source="p_alive")
    page = staff("admin").get(f"/console/members/{no}").text
    assert re.search(r"data-loyalty>\s*75\s*<", page)
    assert 'data-scores="p_alive"' in page and not _effects(page)
