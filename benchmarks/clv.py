"""BG/NBD on many synthetic customers, and the CDNOW reproduction.

    python benchmarks/clv.py --customers 1000000 [--seed 1] [--runs 3] [--cdnow DIR]

Draws customers from the BG/NBD process itself (known parameters, 52 weeks of history in days),
fits the model with ``patron.analytics.clv`` ``--runs`` times (folding the summaries included)
and prints each run's wall and CPU time, the medians, the estimates beside the true parameters,
and a final JSON line. With the CDNOW folder (``--cdnow``, default
``$PATRON_REFERENCE_DATA/cdnow``) it also prints the published fits reproduced.

``lifetimes`` is not a dependency: to compare, install it into a throwaway virtualenv
(``python -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes numpy scipy pandas``) and pass
``--lifetimes-python /tmp/lt/bin/python``: that interpreter fits the same customers in a
subprocess (arrays handed over in a temporary ``.npy`` file), as many times, and its median
times, estimates and log-likelihood are printed beside ours with the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from patron.analytics import clv

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def simulate(n: int, seed: int, days: int = 364) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, t_x, T in weeks (day resolution), vectorised over customers: purchases arrive as a
    Poisson process; after each one the customer leaves with probability p."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n) / 7  # per day
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.integers(1, days + 1, n).astype(np.float64)
    # Repeat purchases the Poisson process makes in T; the customer leaves right after the
    # k-th repeat purchase, k ~ Geometric(p) (1, 2, …).
    n_all = rng.poisson(lam * T)
    k = rng.geometric(p)
    x = np.minimum(n_all, k)
    # Given n_all arrivals in (0, T], the x-th is T × Beta(x, n_all − x + 1).
    t_x = np.where(x > 0, np.floor(T * rng.beta(np.maximum(x, 1), n_all - x + 1)), 0.0)
    return x.astype(np.float64), t_x / 7, T / 7


LIFETIMES_FIT = """
import json, sys, time
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter
x, t_x, T = np.load(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
fitter = BetaGeoFitter()
fitter.fit(pd.Series(x), pd.Series(t_x), pd.Series(T))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
# lifetimes fits on rescaled time; its own likelihood at the fitted parameters on the
# original time scale is comparable with ours.
p = fitter.params_
log_p = np.log([p["r"], p["alpha"], p["a"], p["b"]])
ll = -fitter._negative_log_likelihood(log_p, x, t_x, T, np.ones_like(x), 0.0) * x.size
print(json.dumps({"wall": wall, "cpu": cpu, "log_likelihood": float(ll),
                  "params": {k: float(v) for k, v in fitter.params_.items()}}))
"""


def compare_lifetimes(
    python: Path, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, ours: float, runs: int
) -> dict[str, Any]:
    """Fit the same customers with lifetimes' BetaGeoFitter in another interpreter, ``runs``
    times; the median times and the last run's estimates."""
    got: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        arrays = Path(folder) / "customers.npy"
        np.save(arrays, np.stack([x, t_x, T]))
        for _ in range(runs):
            done = subprocess.run(
                [str(python), "-c", LIFETIMES_FIT, str(arrays)], capture_output=True, text=True
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                print(f"lifetimes failed: {last}")
                return {"lifetimes_error": last}
            got.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"lifetimes run: {got[-1]['wall']:.2f} s wall, {got[-1]['cpu']:.2f} s CPU")
    wall = float(np.median([g["wall"] for g in got]))
    cpu = float(np.median([g["cpu"] for g in got]))
    theirs = float(got[-1]["log_likelihood"])
    params: dict[str, float] = got[-1]["params"]
    print(
        f"lifetimes (median of {runs}): {wall:.2f} s wall, {cpu:.2f} s CPU, log-likelihood "
        f"{theirs:.1f} (ours {ours:.1f}, difference {ours - theirs:+.2f})"
    )
    for k, v in params.items():
        print(f"  {k:6s} {v:8.4f}")
    return {
        "lifetimes_seconds": round(wall, 3),
        "lifetimes_cpu_seconds": round(cpu, 3),
        "lifetimes_log_likelihood": round(theirs, 2),
        "lifetimes_params": {k: round(v, 4) for k, v in params.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="fits of each (medians reported)")
    ap.add_argument("--cdnow", type=Path, default=None)
    ap.add_argument(
        "--lifetimes-python",
        type=Path,
        default=None,
        help="a Python interpreter with lifetimes installed (a throwaway virtualenv)",
    )
    args = ap.parse_args()

    x, t_x, T = simulate(args.customers, args.seed)
    walls, cpus = [], []
    for _ in range(args.runs):
        wall, cpu = time.perf_counter(), time.process_time()
        s = clv.summaries(x, t_x, T)
        fit = clv.fit_bgnbd(s)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        print(f"Patron run: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU")
    wall, cpu = float(np.median(walls)), float(np.median(cpus))
    print(f"{args.customers:,} customers, {s.x.size:,} distinct summaries")
    print(
        f"BG/NBD fit (median of {args.runs}): {wall:.2f} s wall, {cpu:.2f} s CPU, "
        f"log-likelihood {fit.log_likelihood:.1f}"
    )
    for k, v in fit.params.items():
        print(f"  {k:6s} {v:8.4f}  (drawn with {TRUE[k]})")
    for problem in fit.problems:
        print(f"  problem: {problem}")
    result: dict[str, object] = {
        "customers": args.customers,
        "runs": args.runs,
        "fit_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "log_likelihood": round(fit.log_likelihood, 2),
        "params": {k: round(v, 4) for k, v in fit.params.items()},
    }
    if args.lifetimes_python:
        theirs = compare_lifetimes(args.lifetimes_python, x, t_x, T, fit.log_likelihood, args.runs)
        result |= theirs
        if "lifetimes_cpu_seconds" in theirs:
            ratio = theirs["lifetimes_cpu_seconds"] / cpu
            wall_ratio = theirs["lifetimes_seconds"] / wall
            print(f"lifetimes ÷ Patron: {ratio:.1f}× CPU, {wall_ratio:.1f}× wall (medians)")
            result["cpu_ratio"] = round(ratio, 1)
            result["wall_ratio"] = round(wall_ratio, 1)

    reference = (
        args.cdnow or Path(os.environ.get("PATRON_REFERENCE_DATA", "../shared/data")) / "cdnow"
    )
    summary = reference / "cdnow_customers_summary_with_transactions.csv"
    if summary.exists():
        d = np.genfromtxt(summary, delimiter=",", names=True)
        cs = clv.summaries(d["x"], d["t_x"], d["T"])
        for f in (clv.fit_bgnbd(cs), clv.fit_pareto(cs), clv.fit_gamma_gamma(d["x"], d["zbar"])):
            params = ", ".join(f"{k} = {v:.4g}" for k, v in f.params.items())
            print(f"CDNOW {f.model}: {params}; log-likelihood {f.log_likelihood:.1f}")
    else:
        print(f"CDNOW data not found at {reference}: skipped the reproduction")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
