"""Customer lifetime value: BG/NBD and Pareto/NBD for repeat purchases and P(alive), Gamma-Gamma
for spend, fitted by maximum likelihood on per-customer summaries.

Pure numerical code (no I/O): the inputs are arrays of one summary per customer —
``x`` repeat purchases (purchase days after the first), ``t_x`` the time of the last purchase
and ``T`` the customer's age, both counted from the first purchase in one unit (weeks for the
papers, days for members) — and the log-likelihoods are evaluated for all customers at once with
``gammaln``/``hyp2f1``. Identical summaries are folded into one row with a weight first, so a
million members with day-resolution summaries cost a few hundred thousand rows per evaluation.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model" (BG/NBD); Schmittlein, Morrison & Colombo (1987) with Fader & Hardie's
note on the Pareto/NBD likelihood; Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value
curves for customer base analysis" (Gamma-Gamma). docs/analytics.md lists the figures the test
suite reproduces on the CDNOW data.

A fit that is not a usable model — too few repeat buyers, an optimiser that did not converge,
a parameter pinned at the search bound, data with no sign of customers leaving — is returned
with ``problems`` in plain words and must not be used for scores (``usable`` is false).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from patron.analytics.mle import (
    MAX_ITERATIONS,
    Fit,
    maximise,
    with_problem,
)

Array = NDArray[np.float64]
#: Model parameters in the order of the model's names (a tuple, or the optimiser's array).
Params = Sequence[float] | Array

#: Default minimum of customers with a repeat purchase below which no model is fitted.
MIN_REPEAT_BUYERS = 30
#: A dropout probability per purchase (BG/NBD a/(a+b)) or a mean dropout rate per unit of time
#: (Pareto/NBD s/β) below this is "no dropout": P(alive) would be 1 for everyone.
NO_DROPOUT = 1e-3


@dataclass(frozen=True)
class Summaries:
    """One row per customer (or per group of identical customers, with ``weight``)."""

    x: Array
    t_x: Array
    T: Array
    weight: Array

    @property
    def customers(self) -> int:
        return int(self.weight.sum())

    @property
    def repeat_buyers(self) -> int:
        return int(self.weight[self.x > 0].sum())


def summaries(x: Any, t_x: Any, T: Any) -> Summaries:
    """Validate the arrays and fold identical (x, t_x, T) rows into weighted ones (sorted by
    x, then t_x, then T)."""
    xa = np.asarray(x, dtype=np.float64)
    ta = np.asarray(t_x, dtype=np.float64)
    Ta = np.asarray(T, dtype=np.float64)
    if not (xa.shape == ta.shape == Ta.shape) or xa.ndim != 1:
        raise ValueError("x, t_x and T must be one-dimensional arrays of the same length")
    if xa.size and (
        not (np.isfinite(xa).all() and np.isfinite(ta).all() and np.isfinite(Ta).all())
        or (xa < 0).any()
        or (ta < 0).any()
        or (ta > Ta).any()
        or ((xa == 0) & (ta != 0)).any()
    ):
        raise ValueError("need finite values with 0 ≤ t_x ≤ T, x ≥ 0, and t_x = 0 when x = 0")
    if xa.size == 0:
        return Summaries(xa, ta, Ta, np.ones(0))
    rows, counts = group_rows(xa, ta, Ta)
    return Summaries(rows[0], rows[1], rows[2], counts.astype(np.float64))


def group_rows(*columns: Array) -> tuple[list[Array], NDArray[np.int64]]:
    """The distinct rows of equal-length columns (lexicographic order) and how often each
    occurs. Each column is coded by its distinct values and the codes are packed into one
    integer, so the work is a few one-dimensional sorts (``np.unique(axis=0)`` sorts the rows
    as records, several times slower)."""
    distinct = [np.unique(c) for c in columns]
    sizes = [u.size for u in distinct]
    if float(np.prod(np.array(sizes, dtype=np.float64))) >= 2.0**62:
        rows, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
        return [rows[:, i] for i in range(len(columns))], counts
    key = np.zeros(columns[0].size, dtype=np.int64)
    for u, c in zip(distinct, columns, strict=True):
        key = key * u.size + np.searchsorted(u, c)
    keys, counts = np.unique(key, return_counts=True)
    out: list[Array] = []
    for u in reversed(distinct):
        out.append(u[keys % u.size])
        keys = keys // u.size
    return out[::-1], counts


# --- BG/NBD -----------------------------------------------------------------------------------


def bgnbd_log_likelihood(p: Params, s: Summaries) -> Array:
    """Per-row log-likelihood of BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = p
    x, t_x, T = s.x, s.t_x, s.T
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    rebought = x > 0
    a4 = np.full_like(x, -np.inf)
    xr = x[rebought]
    a4[rebought] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[rebought])
    out: Array = a1 + a2 + np.logaddexp(a3, a4)
    return out


def _dot(u: Array, v: Array) -> float:
    """Σ u·v over per-row arrays without BLAS: a threaded BLAS dot of a few hundred thousand
    values costs more in waking threads than the sum (several times the whole evaluation on a
    busy machine), and NumPy's pairwise sum rounds less than a running one."""
    return float((u * v).sum())


@dataclass(frozen=True)
class BgnbdTerms:
    """Summaries regrouped for the fit: the terms of x alone are summed over the distinct x,
    those of T alone over the distinct ages, so each evaluation visits only the repeat
    buyers' rows (with the logarithms looked up in tables of the distinct T and t_x)."""

    ux: Array  # distinct x, with the total weight of each
    wx: Array
    uT: Array  # distinct T, with Σ weight and Σ weight·x of each
    wT: Array
    wxT: Array
    ut: Array  # distinct t_x of the repeat buyers
    # One entry per repeat buyers' row: codes into ux, uT and ut, x and the weight.
    gx: NDArray[np.intp]
    gT: NDArray[np.intp]
    gt: NDArray[np.intp]
    x: Array
    w: Array


def bgnbd_terms(s: Summaries) -> BgnbdTerms:
    ux, gx = np.unique(s.x, return_inverse=True)
    uT, gT = np.unique(s.T, return_inverse=True)
    rebought = s.x > 0
    ut, gt = np.unique(s.t_x[rebought], return_inverse=True)
    return BgnbdTerms(
        ux=ux,
        wx=np.bincount(gx, weights=s.weight, minlength=ux.size).astype(np.float64),
        uT=uT,
        wT=np.bincount(gT, weights=s.weight, minlength=uT.size).astype(np.float64),
        wxT=np.bincount(gT, weights=s.weight * s.x, minlength=uT.size).astype(np.float64),
        ut=ut,
        gx=gx[rebought],
        gT=gT[rebought],
        gt=gt,
        x=s.x[rebought],
        w=s.weight[rebought],
    )


def bgnbd_gradient(p: Params, terms: BgnbdTerms) -> tuple[float, Array]:
    """The weighted total log-likelihood of BG/NBD and its gradient in (r, α, a, b), in closed
    form (digammas): one evaluation instead of the five a numerical gradient takes.

    Per row the likelihood is A1·A2·(e^A3 + [x > 0]·e^A4) (eq. 6): A1, A2 depend on x alone,
    A3 = −(r+x)·log(α+T) on x and T, and for a repeat buyer log(e^A3 + e^A4) = A3 + softplus(d)
    with d = A4 − A3 = log a − log(b+x−1) + (r+x)·(log(α+T) − log(α+t_x)); σ(d) is the share
    of the A4 term, which weights its derivatives."""
    r, alpha, a, b = p
    t = terms
    gl, psi = special.gammaln, special.digamma
    ux, wx = t.ux, t.wx
    ll_x = wx @ (
        gl(r + ux) - gl(r) + r * np.log(alpha) + gl(a + b) + gl(b + ux) - gl(b) - gl(a + b + ux)
    )
    log_T, log_t = np.log(alpha + t.uT), np.log(alpha + t.ut)
    inv_T, inv_t = 1.0 / (alpha + t.uT), 1.0 / (alpha + t.ut)
    weight_T = r * t.wT + t.wxT  # Σ w·(r+x) per T
    repeat = ux > 0
    inv_b = np.where(repeat, 1.0 / np.where(repeat, b + ux - 1, 1.0), 0.0)
    head = np.log(a) + np.log(inv_b, where=repeat, out=np.zeros_like(ux))
    rx = r + t.x
    spread = log_T[t.gT] - log_t[t.gt]
    d = head[t.gx] + rx * spread
    e = np.exp(-np.abs(d))
    softplus = np.maximum(d, 0.0) + np.log1p(e)
    share = t.w * np.where(d >= 0, 1.0, e) / (1.0 + e)  # weight × σ(d)
    per_x = np.bincount(t.gx, weights=share, minlength=ux.size)
    ll = ll_x - weight_T @ log_T + _dot(t.w, softplus)
    psi_ab, psi_abx = psi(a + b), psi(a + b + ux)
    d_r = wx @ (psi(r + ux) - psi(r) + np.log(alpha)) - t.wT @ log_T + _dot(share, spread)
    d_alpha = (
        wx.sum() * r / alpha - weight_T @ inv_T + _dot(share, rx * (inv_T[t.gT] - inv_t[t.gt]))
    )
    d_a = wx @ (psi_ab - psi_abx) + per_x.sum() / a
    d_b = wx @ (psi_ab + psi(b + ux) - psi(b) - psi_abx) - per_x @ inv_b
    return float(ll), np.array([d_r, d_alpha, d_a, d_b])


def bgnbd_hessian(p: Params, terms: BgnbdTerms) -> Array:
    """The second derivatives of ``bgnbd_gradient``'s total in (r, α, a, b): trigammas for
    the terms of x alone, and for each repeat buyer's softplus(d)
    σ(d)(1 − σ(d))·∂d∂dᵀ + σ(d)·∂²d. Used to finish the fit with Newton steps."""
    r, alpha, a, b = p
    t = terms
    tri = functools.partial(special.polygamma, 1)
    ux, wx = t.ux, t.wx
    repeat = ux > 0
    inv_b = np.where(repeat, 1.0 / np.where(repeat, b + ux - 1, 1.0), 0.0)
    head = np.log(a) + np.log(inv_b, where=repeat, out=np.zeros_like(ux))
    log_T, log_t = np.log(alpha + t.uT), np.log(alpha + t.ut)
    inv_T, inv_t = 1.0 / (alpha + t.uT), 1.0 / (alpha + t.ut)
    rx = r + t.x
    spread = log_T[t.gT] - log_t[t.gt]
    d = head[t.gx] + rx * spread
    e = np.exp(-np.abs(d))
    sig = np.where(d >= 0, 1.0, e) / (1.0 + e)
    share = t.w * sig
    v = share * (1.0 - sig)  # weight × σ(1 − σ)
    slope_inv = inv_T[t.gT] - inv_t[t.gt]
    d_alpha = rx * slope_inv  # ∂d/∂α; ∂d/∂r = spread, ∂d/∂a = 1/a, ∂d/∂b = −1/(b+x−1)
    ib = inv_b[t.gx]
    total_w = wx.sum()
    tri_ab, tri_abx = tri(a + b), tri(a + b + ux)
    h = np.zeros((4, 4))
    h[0, 0] = wx @ (tri(r + ux) - tri(r)) + _dot(v, spread * spread)
    h[0, 1] = total_w / alpha - t.wT @ inv_T + _dot(v, spread * d_alpha) + _dot(share, slope_inv)
    h[0, 2] = _dot(v, spread) / a
    h[0, 3] = -_dot(v, spread * ib)
    h[1, 1] = (
        -total_w * r / alpha**2
        + (r * t.wT + t.wxT) @ (inv_T * inv_T)
        + _dot(v, d_alpha * d_alpha)
        + _dot(share, rx * (inv_t[t.gt] ** 2 - inv_T[t.gT] ** 2))
    )
    h[1, 2] = _dot(v, d_alpha) / a
    h[1, 3] = -_dot(v, d_alpha * ib)
    h[2, 2] = wx @ (tri_ab - tri_abx) + (v.sum() - share.sum()) / a**2
    h[2, 3] = wx @ (tri_ab - tri_abx) - _dot(v, ib) / a
    h[3, 3] = wx @ (tri_ab + tri(b + ux) - tri(b) - tri_abx) + _dot(v + share, ib * ib)
    out: Array = np.triu(h) + np.triu(h, 1).T
    return out


def bgnbd_p_alive(p: Params, x: Any, t_x: Any, T: Any) -> Array:
    """P(still active | x, t_x, T); 1 for customers with no repeat purchase."""
    r, alpha, a, b = p
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    ratio = np.where(
        x > 0,
        (a / np.maximum(b + x - 1, 1e-300)) * np.exp((r + x) * np.log((alpha + T) / (alpha + t_x))),
        0.0,
    )
    out: Array = 1.0 / (1.0 + ratio)
    return out


def bgnbd_expected(p: Params, t: float, x: Any, t_x: Any, T: Any) -> Array:
    """Expected purchases in the next ``t`` units given the customer's history (eq. 10)."""
    r, alpha, a, b = p
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1)
    body = 1.0 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
    out: Array = head * body * bgnbd_p_alive(p, x, t_x, T)
    return out


def bgnbd_expected_new(p: Params, t: Any) -> Array:
    """Expected purchases of a new customer in ``t`` units (eq. 9)."""
    r, alpha, a, b = p
    t = np.asarray(t, dtype=np.float64)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    out: Array = (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyp)
    return out


# --- Pareto/NBD -------------------------------------------------------------------------------


def _log_diff(la: Array, lb: Array) -> Array:
    """log(e^la − e^lb) for la ≥ lb, without overflow (−inf where they are equal: a customer
    whose last purchase is at the end of the period)."""
    with np.errstate(divide="ignore"):
        out: Array = la + np.log1p(-np.exp(np.minimum(lb - la, 0.0)))
    return out


def _pareto_log_a0(p: Params, s: Summaries) -> Array:
    """log of the A0 term of the Pareto/NBD likelihood (Fader & Hardie's note, eq. 19/20)."""
    r, alpha, sh, beta = p
    x, t_x, T = s.x, s.t_x, s.T
    big = r + sh + x
    lo, w = (alpha, alpha - beta) if alpha >= beta else (beta, beta - alpha)
    b_: Any = sh + 1 if alpha >= beta else r + x
    f_tx = np.log(special.hyp2f1(big, b_, big + 1, w / (lo + t_x))) - big * np.log(lo + t_x)
    f_T = np.log(special.hyp2f1(big, b_, big + 1, w / (lo + T))) - big * np.log(lo + T)
    return _log_diff(f_tx, f_T)


def pareto_log_likelihood(p: Params, s: Summaries) -> Array:
    """Per-row log-likelihood of Pareto/NBD."""
    r, alpha, sh, beta = p
    x, T = s.x, s.T
    head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + sh * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - sh * np.log(beta + T)
    gone = np.log(sh / (r + sh + x)) + _pareto_log_a0(p, s)
    out: Array = head + np.logaddexp(alive, gone)
    return out


def pareto_p_alive(p: Params, x: Any, t_x: Any, T: Any) -> Array:
    r, alpha, sh, beta = p
    f64 = np.float64
    s = Summaries(np.asarray(x, f64), np.asarray(t_x, f64), np.asarray(T, f64), np.ones(0))
    log_ratio = (
        np.log(sh / (r + sh + s.x))
        + (r + s.x) * np.log(alpha + s.T)
        + sh * np.log(beta + s.T)
        + _pareto_log_a0(p, s)
    )
    out: Array = 1.0 / (1.0 + np.exp(log_ratio))
    return out


def pareto_expected(p: Params, t: float, x: Any, t_x: Any, T: Any) -> Array:
    """Expected purchases in the next ``t`` units given the history (Schmittlein et al. 1987)."""
    r, alpha, sh, beta = p
    x, T = np.asarray(x, dtype=np.float64), np.asarray(T, dtype=np.float64)
    if abs(sh - 1.0) < 1e-9:
        tail = np.log((beta + T + t) / (beta + T))
    else:
        tail = (1.0 - ((beta + T) / (beta + T + t)) ** (sh - 1)) / (sh - 1)
    out: Array = pareto_p_alive(p, x, t_x, T) * (r + x) * (beta + T) / (alpha + T) * tail
    return out


# --- Gamma-Gamma ------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(p: Params, x: Array, m: Array, w: Array) -> Array:
    """Per-customer log-likelihood of the mean spend ``m`` over ``x`` repeat purchases."""
    pp, q, v = p
    out: Array = w * (
        special.gammaln(pp * x + q)
        - special.gammaln(pp * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (pp * x - 1) * np.log(m)
        + (pp * x) * np.log(x)
        - (pp * x + q) * np.log(x * m + v)
    )
    return out


def gamma_gamma_gradient(p: Params, x: Array, m: Array, w: Array) -> tuple[float, Array]:
    """The Gamma-Gamma log-likelihood summed with weights ``w``, and its gradient in (p, q, γ)
    in closed form (digammas), so the fit needs one pass per step instead of four."""
    pp, q, v = p
    px = pp * x
    log_xmv = np.log(x * m + v)
    psi_all = special.digamma(px + q)
    ll = float(gamma_gamma_log_likelihood(p, x, m, w).sum())
    dp = _dot(w, x * (psi_all - special.digamma(px) + np.log(m) + np.log(x) - log_xmv))
    dq = _dot(w, psi_all - special.digamma(q) + np.log(v) - log_xmv)
    dv = _dot(w, q / v - (px + q) / (x * m + v))
    return ll, np.array([dp, dq, dv])


def gamma_gamma_mean(p: Params, x: Any, m: Any) -> Array:
    """Expected mean spend per transaction given ``x`` repeat purchases of mean ``m``; the
    population mean pγ/(q−1) for customers without one."""
    pp, q, v = p
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    out: Array = (pp * (v + x * m)) / (pp * x + q - 1)
    return out


# --- fitting ----------------------------------------------------------------------------------


def _too_few(model: str, names: tuple[str, ...], s: Summaries, minimum: int) -> Fit | None:
    if s.repeat_buyers >= minimum:
        return None
    return Fit(
        model=model,
        params=dict.fromkeys(names, float("nan")),
        log_likelihood=float("nan"),
        customers=s.customers,
        iterations=0,
        problems=(
            f"only {s.repeat_buyers} of {s.customers} customers bought more than once; at least "
            f"{minimum} repeat buyers are needed to fit the model",
        ),
    )


def fit_bgnbd(
    s: Summaries,
    *,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
    max_iterations: int = MAX_ITERATIONS,
) -> Fit:
    names = ("r", "alpha", "a", "b")
    early = _too_few("BG/NBD", names, s, min_repeat_buyers)
    if early is not None:
        return early
    scale = float(np.average(s.T, weights=s.weight)) or 1.0
    terms = bgnbd_terms(s)
    fit = maximise(
        "BG/NBD",
        names,
        lambda p: bgnbd_gradient(p, terms)[0],
        np.array([1.0, scale, 1.0, 1.0]),
        s.customers,
        max_iterations,
        gradient=lambda p: bgnbd_gradient(p, terms),
        hessian=lambda p: bgnbd_hessian(p, terms),
    )
    a, b = fit["a"], fit["b"]
    if a / (a + b) < NO_DROPOUT:
        fit = with_problem(
            fit,
            f"the data show no dropout (a customer leaves after a purchase with probability "
            f"{a / (a + b):.2g}): P(alive) would be 1 for everyone",
        )
    return fit


def fit_pareto(
    s: Summaries,
    *,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
    max_iterations: int = MAX_ITERATIONS,
) -> Fit:
    names = ("r", "alpha", "s", "beta")
    early = _too_few("Pareto/NBD", names, s, min_repeat_buyers)
    if early is not None:
        return early
    scale = float(np.average(s.T, weights=s.weight)) or 1.0
    fit = maximise(
        "Pareto/NBD",
        names,
        lambda p: float(pareto_log_likelihood(p, s) @ s.weight),
        np.array([1.0, scale, 1.0, 2.0 * scale]),
        s.customers,
        max_iterations,
    )
    rate = fit["s"] / fit["beta"]
    if rate * float(np.max(s.T)) < NO_DROPOUT:
        fit = with_problem(
            fit,
            f"the data show no dropout (mean dropout rate {rate:.2g} per unit of time): "
            "P(alive) would be 1 for everyone",
        )
    return fit


def fit_gamma_gamma(
    x: Any,
    m: Any,
    *,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
    max_iterations: int = MAX_ITERATIONS,
) -> Fit:
    """Fit on customers with at least one repeat purchase and a positive mean spend."""
    xa, ma = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    keep = (xa > 0) & (ma > 0)
    xa, ma = xa[keep], ma[keep]
    names = ("p", "q", "gamma")
    if xa.size < min_repeat_buyers:
        return Fit(
            model="Gamma-Gamma",
            params=dict.fromkeys(names, float("nan")),
            log_likelihood=float("nan"),
            customers=int(xa.size),
            iterations=0,
            problems=(
                f"only {xa.size} customers have a repeat purchase with a positive amount; at "
                f"least {min_repeat_buyers} are needed to fit the spend model",
            ),
        )
    (rx, rm), w = group_rows(xa, ma)
    rw = w.astype(np.float64)
    fit = maximise(
        "Gamma-Gamma",
        names,
        lambda p: float(gamma_gamma_log_likelihood(p, rx, rm, rw).sum()),
        np.array([1.0, 2.0, float(np.median(ma))]),
        int(xa.size),
        max_iterations,
        gradient=lambda p: gamma_gamma_gradient(p, rx, rm, rw),
    )
    if fit["q"] <= 1:
        fit = with_problem(
            fit,
            f"q = {fit['q']:.3g} ≤ 1: the spend distribution has no finite mean, so expected "
            "spend is undefined",
        )
    if fit.usable and xa.size >= 3:
        corr = float(np.corrcoef(xa, ma)[0, 1])
        if np.isfinite(corr) and abs(corr) > 0.3:
            fit = with_problem(
                fit,
                f"spend per purchase is correlated with the number of purchases ({corr:.2f}); "
                "the spend model assumes they are independent",
            )
    return fit


# --- value ------------------------------------------------------------------------------------


def clv(
    purchases: Fit,
    spend: Fit,
    x: Any,
    t_x: Any,
    T: Any,
    m: Any,
    *,
    horizon: int,
    period: float,
    discount_rate: float,
    margin: float = 1.0,
) -> Array:
    """Discounted expected value over ``horizon`` periods of ``period`` units each: expected
    purchases in each period × expected spend per purchase × margin, discounted by
    ``discount_rate`` per period. ``m`` is the mean spend of repeat purchases (the population
    mean is used where x = 0 or m ≤ 0)."""
    x = np.asarray(x, dtype=np.float64)
    expected = bgnbd_expected if purchases.model == "BG/NBD" else pareto_expected
    p = tuple(purchases.params.values())
    m = np.asarray(m, dtype=np.float64)
    # Customers without a positive mean repeat spend (none yet, or refunds) get the population
    # mean, as the spend model was fitted without them.
    known = (x > 0) & (m > 0)
    spend_each = gamma_gamma_mean(
        tuple(spend.params.values()), np.where(known, x, 0.0), np.where(known, m, 0.0)
    )
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for i in range(1, horizon + 1):
        cumulative = expected(p, i * period, x, t_x, T)
        total += (cumulative - previous) / (1.0 + discount_rate) ** i
        previous = cumulative
    out: Array = total * spend_each * margin
    return out


# --- calibration / holdout --------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutRow:
    """Customers with ``frequency`` repeat purchases in the calibration period (the last row
    groups ``frequency`` and more): their mean predicted and actual holdout purchases."""

    frequency: int
    customers: int
    predicted: float
    actual: float


@dataclass(frozen=True)
class Holdout:
    rows: tuple[HoldoutRow, ...]
    predicted_total: float
    actual_total: int
    mean_absolute_error: float


def holdout_check(
    fit: Fit, x: Any, t_x: Any, T: Any, actual: Any, duration: float, *, top: int = 7
) -> Holdout:
    """Predicted vs actual repeat purchases in a holdout period of ``duration`` units, by the
    customers' calibration frequency 0, 1, …, ``top``+ (the check of the papers' Figure 3)."""
    x = np.asarray(x, dtype=np.float64)
    actual_a = np.asarray(actual, dtype=np.float64)
    expected = bgnbd_expected if fit.model == "BG/NBD" else pareto_expected
    predicted = expected(tuple(fit.params.values()), duration, x, t_x, T)
    group = np.minimum(x, top).astype(np.int64)
    rows = []
    for g in range(top + 1):
        sel = group == g
        n = int(sel.sum())
        if n:
            rows.append(HoldoutRow(g, n, float(predicted[sel].mean()), float(actual_a[sel].mean())))
    return Holdout(
        rows=tuple(rows),
        predicted_total=float(predicted.sum()),
        actual_total=int(actual_a.sum()),
        mean_absolute_error=float(np.abs(predicted - actual_a).mean()) if x.size else 0.0,
    )


@dataclass(frozen=True)
class Split:
    """Calibration summaries and holdout purchase counts built from dated transactions."""

    customer: NDArray[np.int64]
    x: Array
    t_x: Array
    T: Array
    holdout: Array


def split_transactions(
    customer: Any, day: Any, *, calibration_end: int, holdout_end: int, unit: float = 1.0
) -> Split:
    """Per customer whose first purchase is on or before ``calibration_end``: the calibration
    summary (purchase days, not transactions: several purchases on one day count once; times
    in ``unit`` days) and the number of purchase days in (calibration_end, holdout_end]."""
    pairs = np.unique(
        np.stack([np.asarray(customer, dtype=np.int64), np.asarray(day, dtype=np.int64)], axis=1),
        axis=0,
    )
    ids, who = np.unique(pairs[:, 0], return_inverse=True)
    days = pairs[:, 1]
    n = ids.size
    cal = days <= calibration_end
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, who[cal], days[cal])
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, who[cal], days[cal])
    count = np.bincount(who[cal], minlength=n)
    later = (days > calibration_end) & (days <= holdout_end)
    hold = np.bincount(who[later], minlength=n)
    keep = count > 0
    return Split(
        customer=ids[keep],
        x=(count[keep] - 1).astype(np.float64),
        t_x=(last[keep] - first[keep]) / unit,
        T=(calibration_end - first[keep]) / unit,
        holdout=hold[keep].astype(np.float64),
    )
