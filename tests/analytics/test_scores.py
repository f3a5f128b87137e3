"""Member scores and model evaluation on the database (SQLite and PostgreSQL): empty database,
one member, everyone with one purchase, and a simulated population."""

from __future__ import annotations

import math
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from threadpoolctl import threadpool_info

from patron.analytics import churn, rfm
from patron.analytics import scores as svc
from patron.analytics.models import MemberScore, ModelRun
from patron.auth.principal import Principal
from patron.program import service as program
from tests.analytics.history import (
    add_members,
    add_orders,
    simulate,
    simulate_fading,
    simulate_recency_only,
)
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 3, 1)  # START in Shanghai


def _scores(database):
    with database.unit_of_work() as s:
        return {row.member_id: row for row in s.scalars(select(MemberScore))}


def test_empty_database_says_what_is_missing(database):
    with database.unit_of_work() as s:
        run = svc.run_scores(s, now=START, tz=SH)
        ev = svc.evaluate(s, now=START, tz=SH)
        view = svc.overview(s)
    assert run.members == 0
    assert run.missing == ("no member has bought anything yet",)
    assert ev.members == 0
    assert ev.missing[0].startswith("no member bought anything on or before 2025-09-02")
    assert view.scored == 0
    assert view.last_scores is not None
    assert view.last_scores.report["missing"] == ["no member has bought anything yet"]


def test_one_member(database):
    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=START - timedelta(days=30))
        add_orders(s, [(m, TODAY - timedelta(days=3), 12_000)])
        run = svc.run_scores(s, now=START, tz=SH)
    assert run.members == 1
    assert run.missing == (
        "only 0 of 1 customers bought more than once; at least 30 repeat buyers are needed to "
        "fit the model",
        "only 0 customers have a repeat purchase with a positive amount; at least 30 are "
        "needed to fit the spend model",
    )
    (row,) = _scores(database).values()
    assert (row.recency_days, row.purchase_days, row.monetary_fen) == (3, 1, 12_000)
    assert (row.r_score, row.f_score, row.m_score) == (1, 1, 1)
    assert row.p_alive is None
    assert row.clv_fen is None


def test_everyone_bought_once(database):
    with database.unit_of_work() as s:
        ids = add_members(s, 40, at=START - timedelta(days=400))
        add_orders(s, [(m, TODAY - timedelta(days=m * 7), 1000 * m) for m in ids])
        run = svc.run_scores(s, now=START, tz=SH)
        ev = svc.evaluate(s, now=START, tz=SH)
    assert run.repeat_buyers == 0
    assert run.purchases is not None
    assert not run.purchases.usable
    assert run.missing[0].startswith("only 0 of 40 customers bought more than once")
    # Every F is 1 (ties share the lowest score); R and M are quintiles of 8 members each.
    rows = _scores(database)
    assert {r.f_score for r in rows.values()} == {1}
    assert sorted(r.r_score for r in rows.values()) == sorted([1, 2, 3, 4, 5] * 8)
    assert rows[1].r_score == 5  # bought most recently
    assert rows[40].m_score == 5
    assert {r.segment for r in rows.values()} == {
        "hibernating",
        "about_to_sleep",
        "promising",
        "new",
    }
    assert any("BG/NBD: only" in m for m in ev.missing)


def test_returned_orders_and_erased_members_do_not_count(database):
    with database.unit_of_work() as s:
        a, b = add_members(s, 2, at=START - timedelta(days=30))
        add_orders(s, [(a, TODAY - timedelta(days=1), 500)], status="returned")
        add_orders(s, [(a, TODAY - timedelta(days=2), 700), (a, TODAY - timedelta(days=2), 300)])
        add_orders(s, [(b, TODAY - timedelta(days=5), 900)])
        s.get(svc.Member, b).status = "erased"
        s.flush()
        svc.run_scores(s, now=START, tz=SH)
    rows = _scores(database)
    assert list(rows) == [a]
    # Two orders on one day are one purchase day.
    assert (rows[a].recency_days, rows[a].purchase_days, rows[a].monetary_fen) == (2, 1, 1000)


@pytest.fixture
def population(database):
    with database.unit_of_work() as s:
        ids = add_members(s, 400, at=START - timedelta(days=800))
        add_orders(s, simulate(ids, until=TODAY))
    return ids


def test_scores_of_a_population(database, population):
    with database.unit_of_work() as s:
        run = svc.run_scores(s, now=START, tz=SH)
        view = svc.overview(s)
    assert run.purchases is not None and run.purchases.usable, run.missing
    assert run.spend is not None and run.spend.usable, run.missing
    assert run.missing == ()
    rows = _scores(database)
    assert len(rows) == run.members == view.scored
    # The churn model scores only if it beat the recency baseline on the holdout.
    assert run.churn is not None
    assert run.churn.auc is not None
    assert run.churn_source == ("model" if run.churn.beats_baseline else "p_alive")
    for row in rows.values():
        assert 0 <= row.p_alive <= 1
        assert 0 <= row.churn_risk <= 1
        if run.churn_source == "p_alive":
            assert row.churn_risk == pytest.approx(1 - row.p_alive, abs=1e-6)
        assert row.expected_purchases >= 0
        assert isinstance(row.clv_fen, int) and row.clv_fen >= 0
        assert row.segment == rfm.segment(row.r_score, row.f_score)
    # Quintiles by rank: ties share the lower score, the scores follow the values.
    by_days = sorted(rows.values(), key=lambda r: r.purchase_days)
    n = len(by_days)
    for row in by_days:
        below = sum(1 for o in by_days if o.purchase_days < row.purchase_days)
        assert row.f_score == 1 + (5 * below) // n
    # A member who bought often and recently is worth more and more likely alive than one
    # who bought as often but long ago.
    repeat = [r for r in rows.values() if r.purchase_days >= 4]
    fresh = min(repeat, key=lambda r: r.recency_days)
    stale = max(repeat, key=lambda r: r.recency_days)
    assert fresh.p_alive > stale.p_alive
    assert sum(view.cells.values()) == n
    assert sum(seg.members for seg in view.segments) == n
    with database.unit_of_work() as s:
        report = s.scalars(select(ModelRun).where(ModelRun.kind == "scores")).one().report
    assert report["purchases"]["model"] == "BG/NBD"
    assert set(report["purchases"]["params"]) == {"r", "alpha", "a", "b"}
    # Running again replaces the rows (the job is idempotent).
    with database.unit_of_work() as s:
        svc.run_scores(s, now=START, tz=SH)
    assert _scores(database).keys() == rows.keys()


def test_evaluation_on_a_holdout(database, population):
    with database.unit_of_work() as s:
        ev = svc.evaluate(s, now=START, tz=SH)
    assert ev.calibration_end == TODAY - timedelta(days=180)
    assert [c.fit.model for c in ev.checks] == ["BG/NBD", "Pareto/NBD"]
    for check in ev.checks:
        assert check.fit.usable, check.fit.problems
        assert check.holdout is not None
        assert sum(r.customers for r in check.holdout.rows) == ev.members
        assert check.holdout.predicted_total > 0
    bg = ev.checks[0].holdout
    assert bg.rows[0].frequency == 0
    assert ev.churn is not None
    assert ev.churn.missing == ()
    assert len(ev.churn.lift) == 10


def test_operator_cut_points(database):
    with database.unit_of_work() as s:
        program.put_section(
            s,
            Principal.system("tests"),
            rfm.SECTION,
            rfm.ModelSettings(
                cut_points=rfm.CutPoints(
                    recency_days=[30, 90, 180, 365],
                    purchase_days=[2, 3, 5, 10],
                    monetary_fen=[10_000, 50_000, 100_000, 500_000],
                )
            ),
            now=START,
        )
        a, b = add_members(s, 2, at=START - timedelta(days=500))
        add_orders(s, [(a, TODAY - timedelta(days=10), 60_000)])
        add_orders(s, [(b, TODAY - timedelta(days=d), 2_000) for d in (200, 250, 300)])
        svc.run_scores(s, now=START, tz=SH)
    rows = _scores(database)
    assert (rows[a].r_score, rows[a].f_score, rows[a].m_score) == (5, 1, 3)
    # 200 days ago: under 365, not under 180 → 2; 3 purchase days → 3; ¥60 → 1.
    assert (rows[b].r_score, rows[b].f_score, rows[b].m_score) == (2, 3, 1)
    assert rows[b].segment == "at_risk"


def test_cut_points_must_ascend():
    with pytest.raises(ValueError, match="ascending"):
        rfm.CutPoints(
            recency_days=[5, 4, 6, 7], purchase_days=[1, 2, 3, 4], monetary_fen=[1, 2, 3, 4]
        )


def test_segment_grid():
    assert rfm.segment(5, 5) == "champions"
    assert rfm.segment(1, 1) == "hibernating"
    assert rfm.segment(2, 5) == "cant_lose"
    assert rfm.segment(5, 1) == "new"
    assert rfm.segment(4, 1) == "promising"
    assert rfm.segment(3, 3) == "need_attention"
    assert {seg for _, _, seg in rfm.grid()} == set(rfm.SEGMENTS)
    with pytest.raises(ValueError):
        rfm.segment(0, 3)


def test_nightly_job_runs_once_per_business_day(database):
    from patron.analytics import jobs

    assert jobs.run_scores(database, START, SH, force=False)["members"] == 0
    assert "skipped" in jobs.run_scores(database, START, SH, force=False)
    assert "members" in jobs.run_scores(database, START, SH)  # by hand: always
    assert "members" in jobs.run_scores(database, START + timedelta(days=1), SH, force=False)
    with database.unit_of_work() as s:
        runs = s.scalars(select(ModelRun.as_of).where(ModelRun.kind == "scores")).all()
    assert runs == [TODAY, TODAY, TODAY + timedelta(days=1)]


def test_the_jobs_run_with_one_blas_thread(database, monkeypatch):
    # A threaded BLAS spends more waking its threads than computing on the models' small
    # problems, and competes with the database for the cores: both jobs run with one.
    seen: list[int] = []
    real = svc._purchase_days

    def spy(session, as_of):
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return real(session, as_of)

    monkeypatch.setattr(svc, "_purchase_days", spy)
    with database.unit_of_work() as s:
        svc.run_scores(s, now=START, tz=SH)
        svc.evaluate(s, now=START, tz=SH)
    assert seen and set(seen) == {1}


def test_a_member_explanation_adds_up_to_the_stored_risk(database, population, monkeypatch):
    """The member page's explanation: the intercept plus every input's contribution is the
    log-odds of the churn risk the job stored for that member. (The simulated population's
    model does not beat the recency baseline; here it is used as if it had.)"""
    from patron.analytics import member_scores

    monkeypatch.setattr(churn.ChurnReport, "beats_baseline", property(lambda self: True))
    with database.unit_of_work() as s:
        run = svc.run_scores(s, now=START, tz=SH)
    assert run.churn_source == "model", run.churn
    with database.unit_of_work() as s:
        report = s.scalars(select(ModelRun).where(ModelRun.kind == "scores")).one().report
        views = [member_scores.member_scores(s, m) for m in population[:: len(population) // 8]]
    intercept = report["churn_intercept"]
    for view in views:
        assert view is not None and view.churn_source == "model"
        assert {c.feature for c in view.contributions} == set(churn.FEATURES)
        log_odds = intercept + sum(c.log_odds for c in view.contributions)
        assert 1 / (1 + math.exp(-log_odds)) == pytest.approx(view.score.churn_risk, abs=1e-3)
        assert view.loyalty == round(100 * (1 - view.score.churn_risk))
        assert view.contributions == tuple(
            sorted(view.contributions, key=lambda c: -abs(c.log_odds))
        )


@pytest.mark.parametrize(
    ("history", "seed", "source"),
    [(simulate_fading, 7, "model"), (simulate_recency_only, 5, "p_alive")],
)
def test_the_scores_use_the_churn_model_only_where_it_beats_recency(
    database, history, seed, source
):
    """Where leaving shows before the last purchase, the job scores churn with the model and
    keeps its explanation; where recency is all there is, churn risk is 1 − P(alive)."""
    with database.unit_of_work() as s:
        ids = add_members(s, 400, at=START - timedelta(days=800))
        add_orders(s, history(ids, until=TODAY, seed=seed))
        run = svc.run_scores(s, now=START, tz=SH)
    assert run.churn is not None and run.churn.margin is not None
    # P(alive) is there to fall back on (on the fading history the spend model is rightly
    # refused: spend and frequency go together there).
    assert run.purchases is not None and run.purchases.usable, run.missing
    assert run.churn.beats_baseline == (source == "model")
    assert run.churn_source == source
    rows = _scores(database).values()
    from_p_alive = [r.churn_risk == pytest.approx(1 - r.p_alive, abs=1e-6) for r in rows]
    assert all(from_p_alive) == (source == "p_alive")
    with database.unit_of_work() as s:
        report = s.scalars(select(ModelRun).where(ModelRun.kind == "scores")).one().report
    assert report["churn_source"] == source
    assert report["churn"]["beats_baseline"] == (source == "model")
    assert report["churn"]["margin"] == pytest.approx(run.churn.margin)
    assert ("churn_explain" in report) == (source == "model")
