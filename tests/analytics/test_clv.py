"""CLV models: the published CDNOW parameters, degenerate fits on synthetic data, the holdout
check. The CDNOW files are read from the reference data folder (``PATRON_REFERENCE_DATA``,
default ``../shared/data`` beside the repository); the tests that need them skip without it."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from patron.analytics import clv

REFERENCE = Path(
    os.environ.get(
        "PATRON_REFERENCE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
CDNOW = REFERENCE / "cdnow"


def _cdnow(name: str) -> Path:
    path = CDNOW / name
    if not path.exists():
        pytest.skip(
            f"CDNOW reference data not found at {path}: set PATRON_REFERENCE_DATA to the "
            "folder that holds cdnow/"
        )
    return path


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


@pytest.fixture(scope="module")
def summary() -> np.ndarray:
    return np.genfromtxt(
        _cdnow("cdnow_customers_summary_with_transactions.csv"), delimiter=",", names=True
    )


def test_bgnbd_reproduces_the_paper(summary: np.ndarray) -> None:
    fit = clv.fit_bgnbd(clv.summaries(summary["x"], summary["t_x"], summary["T"]))
    assert fit.usable, fit.problems
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert _sig(fit[name]) == _sig(value), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fit.customers == 2357


def test_bgnbd_fit_is_pinned_to_six_figures(summary: np.ndarray) -> None:
    # The estimates and log-likelihood of the per-row likelihood with its own gradient (before
    # the fit regrouped the terms): the faster evaluation must find the same optimum.
    fit = clv.fit_bgnbd(clv.summaries(summary["x"], summary["t_x"], summary["T"]))
    pinned = {"r": 0.242593, "alpha": 4.41353, "a": 0.792886, "b": 2.42575}
    for name, value in pinned.items():
        assert _sig(fit[name], 6) == value, name
    assert fit.log_likelihood == pytest.approx(-9582.42556, abs=1e-4)


def test_pareto_nbd_reproduces_the_paper(summary: np.ndarray) -> None:
    fit = clv.fit_pareto(clv.summaries(summary["x"], summary["t_x"], summary["T"]))
    assert fit.usable, fit.problems
    published = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in published.items():
        assert _sig(fit[name]) == _sig(value), name
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.1)


def test_gamma_gamma_reproduces_the_paper(summary: np.ndarray) -> None:
    fit = clv.fit_gamma_gamma(summary["x"], summary["zbar"])
    assert fit.usable, fit.problems
    assert fit.customers == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert _sig(fit[name]) == _sig(value), name
    assert fit.log_likelihood == pytest.approx(-4055.9, abs=0.1)
    # The population mean spend pγ/(q−1) the paper reports (about $35).
    assert fit["p"] * fit["gamma"] / (fit["q"] - 1) == pytest.approx(35.2, abs=0.1)


def _days(stamps: np.ndarray) -> np.ndarray:
    base = date(1997, 1, 1).toordinal()
    return np.array(
        [date(v // 10000, v // 100 % 100, v % 100).toordinal() - base for v in stamps.tolist()]
    )


def test_holdout_check_on_the_cdnow_transactions() -> None:
    raw = np.loadtxt(_cdnow("CDNOW_sample.txt"), dtype=np.int64, usecols=(1, 2))
    base = date(1997, 1, 1).toordinal()
    split = clv.split_transactions(
        raw[:, 0],
        _days(raw[:, 1]),
        calibration_end=date(1997, 9, 30).toordinal() - base,
        holdout_end=date(1998, 6, 30).toordinal() - base,
        unit=7.0,
    )
    # The transactions give back the papers' summaries, hence the same fit.
    assert split.x.size == 2357
    assert split.x.sum() == 2457
    fit = clv.fit_bgnbd(clv.summaries(split.x, split.t_x, split.T))
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    check = clv.holdout_check(fit, split.x, split.t_x, split.T, split.holdout, 39.0)
    assert [row.frequency for row in check.rows] == list(range(8))
    assert sum(row.customers for row in check.rows) == 2357
    assert check.actual_total == 1882
    # Conditional expectations track the actual purchases in every frequency group.
    for row in check.rows:
        assert row.predicted == pytest.approx(row.actual, rel=0.3, abs=0.05), row
    assert 0.8 < check.predicted_total / check.actual_total < 1.0


def _no_dropout(n: int = 400) -> clv.Summaries:
    """Customers who buy at gamma-distributed Poisson rates (about one a week) and never
    leave."""
    rng = np.random.default_rng(7)
    rate = rng.gamma(2.0, 0.5, n)
    age = rng.uniform(20, 52, n)
    counts = rng.poisson(rate * age)
    last = np.where(counts > 0, age * rng.beta(np.maximum(counts, 1), 1), 0.0)
    return clv.summaries(counts, last, age)


def test_no_dropout_is_reported_not_returned_as_numbers() -> None:
    # (Few customers: Pareto/NBD's hypergeometric terms are slow where dropout vanishes.)
    data = _no_dropout()
    for fit in (clv.fit_bgnbd(data), clv.fit_pareto(data)):
        assert not fit.usable
        assert any("the data show no dropout" in p for p in fit.problems), fit.problems


def test_parameter_at_a_bound_is_reported() -> None:
    # Everyone spends exactly the same: no spread between or within customers, so p and q run
    # off to infinity.
    x = np.arange(1, 61, dtype=float) % 5 + 1
    fit = clv.fit_gamma_gamma(x, np.full(60, 10.0))
    assert not fit.usable
    assert any(p.startswith("parameter p ran to the upper bound") for p in fit.problems)


def test_non_convergence_is_reported() -> None:
    fit = clv.fit_bgnbd(_no_dropout(), max_iterations=2)
    assert not fit.usable
    assert any("did not converge" in p for p in fit.problems)


def test_too_few_repeat_buyers() -> None:
    x = np.array([0, 0, 0, 1, 2], dtype=float)
    s = clv.summaries(x, np.array([0, 0, 0, 5, 9.0]), np.full(5, 10.0))
    fit = clv.fit_bgnbd(s)
    assert not fit.usable
    assert fit.problems == (
        "only 2 of 5 customers bought more than once; at least 30 repeat buyers are needed "
        "to fit the model",
    )
    assert not clv.fit_pareto(s).usable
    assert not clv.fit_gamma_gamma(x, np.array([0, 0, 0, 10, 20.0])).usable
    # Everyone with a single purchase: nothing to fit, said in words.
    none = clv.summaries(np.zeros(3), np.zeros(3), np.full(3, 4.0))
    assert clv.fit_bgnbd(none).problems[0].startswith("only 0 of 3 customers")


def test_empty_input() -> None:
    s = clv.summaries(np.zeros(0), np.zeros(0), np.zeros(0))
    assert s.customers == 0
    assert not clv.fit_bgnbd(s).usable


def test_bad_summaries_are_refused() -> None:
    with pytest.raises(ValueError, match="t_x"):
        clv.summaries([1], [5], [3])
    with pytest.raises(ValueError, match="finite"):
        clv.summaries([1, 2], [1, float("nan")], [3, 4])


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD-like summaries in weeks at day resolution: many customers share a row, some
    bought last on their last day (t_x = T), most never came back."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 120, n).astype(np.float64)
    x = np.minimum(rng.poisson(rng.gamma(0.3, 0.1, n) * T), rng.geometric(0.3, n) - 1)
    t_x = np.where(x > 0, np.floor(T * rng.beta(np.maximum(x, 1), 1.0, n)), 0.0)
    t_x[:50] = np.where(x[:50] > 0, T[:50], 0.0)
    return x.astype(np.float64), t_x / 7, T / 7


def test_summaries_fold_identical_rows_exactly() -> None:
    x, t_x, T = _synthetic(5000, 3)
    s = clv.summaries(x, t_x, T)
    rows, counts = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_counts=True)
    assert s.x.size < x.size
    np.testing.assert_array_equal(np.stack([s.x, s.t_x, s.T], axis=1), rows)
    np.testing.assert_array_equal(s.weight, counts)
    # Columns of arbitrary floats (the spend model's means) fold the same way.
    m = np.random.default_rng(4).choice([1.5, 2.25, 1e9, 0.1], 5000)
    (gx, gm), n = clv.group_rows(x, m)
    rows, counts = np.unique(np.stack([x, m], axis=1), axis=0, return_counts=True)
    np.testing.assert_array_equal(np.stack([gx, gm], axis=1), rows)
    np.testing.assert_array_equal(n, counts)


@pytest.mark.parametrize(
    "at", [(0.25, 4.0, 0.8, 2.5), (1.7, 60.0, 0.05, 0.6), (0.02, 0.3, 3.0, 15.0)]
)
def test_bgnbd_gradient_matches_the_per_row_likelihood(
    at: tuple[float, float, float, float],
) -> None:
    s = clv.summaries(*_synthetic(3000, 5))
    terms = clv.bgnbd_terms(s)

    def reference(p: tuple[float, ...]) -> float:
        return float(clv.bgnbd_log_likelihood(p, s) @ s.weight)

    ll, grad = clv.bgnbd_gradient(at, terms)
    assert ll == pytest.approx(reference(at), rel=1e-12)
    for i in range(4):
        h = at[i] * 1e-6
        up = tuple(v + h if k == i else v for k, v in enumerate(at))
        down = tuple(v - h if k == i else v for k, v in enumerate(at))
        numeric = (reference(up) - reference(down)) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-4), i
    # The Hessian (the fit's Newton steps) against differences of the gradient.
    hess = clv.bgnbd_hessian(at, terms)
    np.testing.assert_array_equal(hess, hess.T)
    for i in range(4):
        h = at[i] * 1e-6
        up = tuple(v + h if k == i else v for k, v in enumerate(at))
        down = tuple(v - h if k == i else v for k, v in enumerate(at))
        numeric_col = (clv.bgnbd_gradient(up, terms)[1] - clv.bgnbd_gradient(down, terms)[1]) / (
            2 * h
        )
        np.testing.assert_allclose(hess[:, i], numeric_col, rtol=1e-5, atol=1e-3)


def test_predictions_and_value(summary: np.ndarray) -> None:
    s = clv.summaries(summary["x"], summary["t_x"], summary["T"])
    bg = clv.fit_bgnbd(s)
    p = tuple(bg.params.values())
    # A new customer's expected purchases in 39 weeks (the paper's Figure 2 scale).
    assert float(clv.bgnbd_expected_new(p, 39.0)) == pytest.approx(1.195, abs=0.01)
    alive = clv.bgnbd_p_alive(p, summary["x"], summary["t_x"], summary["T"])
    assert ((alive > 0) & (alive <= 1)).all()
    assert (alive[summary["x"] == 0] == 1).all()
    # A frequent buyer who stopped long ago is less likely alive than a recent one.
    old, recent = clv.bgnbd_p_alive(p, [10, 10], [5.0, 38.0], [38.86, 38.86])
    assert old < 0.1 < 0.9 < recent
    pareto = clv.fit_pareto(s)
    pa = clv.pareto_p_alive(tuple(pareto.params.values()), [10, 10], [5.0, 38.0], [38.86] * 2)
    assert pa[0] < pa[1]
    gg = clv.fit_gamma_gamma(summary["x"], summary["zbar"])
    value = clv.clv(
        bg,
        gg,
        summary["x"],
        summary["t_x"],
        summary["T"],
        summary["zbar"],
        horizon=12,
        period=4.345,
        discount_rate=0.01,
    )
    assert (value >= 0).all()
    # Discounting lowers the value; a longer horizon raises it.
    flat = clv.clv(
        bg,
        gg,
        summary["x"],
        summary["t_x"],
        summary["T"],
        summary["zbar"],
        horizon=12,
        period=4.345,
        discount_rate=0.0,
    )
    assert (flat >= value).all()
    assert flat.sum() > value.sum()


def test_refunded_spend_takes_the_population_mean(summary: np.ndarray) -> None:
    s = clv.summaries(summary["x"], summary["t_x"], summary["T"])
    bg = clv.fit_bgnbd(s)
    gg = clv.fit_gamma_gamma(summary["x"], summary["zbar"])
    kw = {"horizon": 12, "period": 4.345, "discount_rate": 0.01}
    refunded = clv.clv(bg, gg, [2], [30.0], [38.86], [-5.0], **kw)
    mean = gg["p"] * gg["gamma"] / (gg["q"] - 1)
    expected = clv.bgnbd_expected(tuple(bg.params.values()), 52.14, [2], [30.0], [38.86])
    assert refunded[0] > 0
    # Discounted purchases × the population mean: below the undiscounted product.
    assert refunded[0] < expected[0] * mean


@pytest.mark.parametrize("at", [(0.8, 2.5, 9000.0), (3.1, 1.4, 250.0)])
def test_gamma_gamma_gradient_matches_finite_differences(at: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 12, 400).astype(np.float64)
    m = rng.gamma(3.0, 2000.0, 400) + 1.0
    w = rng.integers(1, 4, 400).astype(np.float64)
    ll, grad = clv.gamma_gamma_gradient(at, x, m, w)
    assert ll == pytest.approx(float(clv.gamma_gamma_log_likelihood(at, x, m, w).sum()))
    for i in range(3):
        h = at[i] * 1e-6
        up = tuple(v + h if k == i else v for k, v in enumerate(at))
        down = tuple(v - h if k == i else v for k, v in enumerate(at))
        numeric = (
            clv.gamma_gamma_log_likelihood(up, x, m, w).sum()
            - clv.gamma_gamma_log_likelihood(down, x, m, w).sum()
        ) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-6)
