"""Maximum-likelihood search shared by the CLV models (``clv``): L-BFGS-B on log-parameters
inside a box, finished with Newton steps where the model has an exact Hessian, and the fit
returned with plain-words problems when it is not a usable estimate (did not converge, a
parameter ran to the bound of the search)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import optimize
from threadpoolctl import threadpool_limits

Array = NDArray[np.float64]

#: The search runs on log-parameters inside these bounds; an estimate within ``_EDGE`` of one is
#: reported as pinned at the bound (the likelihood kept improving towards it).
LOG_BOUND = 12.0  # parameters between e^-12 ≈ 6e-6 and e^12 ≈ 1.6e5
_EDGE = 0.05
#: With an exact Hessian the quasi-Newton search stops at this slope of the mean
#: log-likelihood (in log-parameters) and Newton steps take it below ``_NEWTON_TO``.
_NEWTON_FROM = 1e-5
_NEWTON_TO = 1e-12
#: Iterations of the gradient search (the polishing simplex gets 40 times as many).
MAX_ITERATIONS = 200


_P = ParamSpec("_P")
_R = TypeVar("_R")


def one_blas_thread(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with BLAS on one thread. The models' linear algebra is on a handful of
    parameters or on vectors, where a threaded BLAS spends more waking and spinning its threads
    than computing — a third of the scores job's CPU on a busy 2-core machine, and threads that
    compete with the database the job reads from."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameters by name, the total log-likelihood, and the reasons
    (plain sentences) why it must not be used, if any."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    customers: int
    iterations: int
    problems: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        return not self.problems

    def __getitem__(self, name: str) -> float:
        return self.params[name]


@one_blas_thread
def maximise(
    model: str,
    names: tuple[str, ...],
    total: Callable[[Array], float],
    start: Array,
    customers: int,
    max_iterations: int,
    gradient: Callable[[Array], tuple[float, Array]] | None = None,
    hessian: Callable[[Array], Array] | None = None,
) -> Fit:
    # The mean log-likelihood per customer keeps the slope near 1 whatever the data's size, so
    # the first step of the search stays inside the region where the likelihood is finite.
    per = 1.0 / max(customers, 1)

    def objective(theta: Array) -> float:
        with np.errstate(all="ignore"):
            ll = total(np.exp(theta)) * per
        return -ll if np.isfinite(ll) else 1e300

    def with_gradient(theta: Array) -> tuple[float, Array]:
        assert gradient is not None
        p = np.exp(theta)
        with np.errstate(all="ignore"):
            ll, g = gradient(p)
        if not (np.isfinite(ll) and np.isfinite(g).all()):
            return 1e300, np.zeros_like(theta)
        return -ll * per, -g * p * per  # d/dθ of log-parameters: chain rule × p

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    theta0 = np.log(start)
    spent = 0
    polished: tuple[Array, float, Array, int] | None = None
    if gradient is not None and hessian is not None:
        # Near the optimum the objective's changes fall below its rounding, so the quasi-Newton
        # line search wastes evaluations there: stop it early and finish with Newton steps on
        # the exact Hessian, which need no line search.
        rough = optimize.minimize(
            with_gradient,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": _NEWTON_FROM},
        )
        spent = int(rough.nit)

        def curvature(theta: Array, slope: Array) -> Array:
            """Hessian of the minimised −mean log-likelihood in log-parameters, from the
            likelihood's in parameters and the objective's gradient ``slope`` at ``theta``."""
            p = np.exp(theta)
            with np.errstate(all="ignore"):
                h = hessian(p)
            out: Array = -h * np.outer(p, p) * per + np.diag(slope)
            return out

        if rough.success:
            polished = newton(with_gradient, curvature, np.asarray(rough.x))
        if polished is not None:
            theta, fun, jac, steps = polished
            best = optimize.OptimizeResult(
                x=theta, fun=fun, jac=jac, nit=spent + steps, success=True, message="Newton"
            )
        else:
            theta0 = np.asarray(rough.x)
    if polished is None:
        # Tight tolerances: the default stops on a relative change of the objective of ~2e-9,
        # before the parameters are as precise as the papers print them.
        best = optimize.minimize(
            objective if gradient is None else with_gradient,
            theta0,
            jac=True if gradient is not None else None,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max(max_iterations - spent, 1), "ftol": 1e-15, "gtol": 1e-9},
        )
        best.nit = int(best.nit) + spent
    theta = np.asarray(best.x)
    inside = np.abs(np.abs(theta) - LOG_BOUND) >= _EDGE
    slope = float(np.max(np.abs(np.asarray(best.jac)[inside]), initial=0.0))
    params = {n: float(np.exp(t)) for n, t in zip(names, theta, strict=True)}
    problems: list[str] = []
    if not np.isfinite(best.fun) or best.fun >= 1e299:
        problems.append("the likelihood could not be evaluated at any tried parameters")
    elif not best.success and not (str(best.message).startswith("ABNORMAL") and slope <= 1e-3):
        # (An "abnormal" line search at a flat point is the numerical gradient's noise at the
        # optimum, not a failure: the slope test below still guards it.)
        problems.append(f"the optimiser did not converge ({best.message})")
    elif slope > 1e-3:
        problems.append(
            f"the optimiser stopped where the likelihood still slopes ({slope:.2g}): it did not "
            "converge"
        )
    for n, t in zip(names, theta, strict=True):
        if abs(abs(t) - LOG_BOUND) < _EDGE:
            side = "upper" if t > 0 else "lower"
            problems.append(
                f"parameter {n} ran to the {side} bound of the search ({np.exp(t):.3g}): the data "
                "do not determine it"
            )
    return Fit(
        model=model,
        params=params,
        log_likelihood=float(-best.fun / per),
        customers=customers,
        iterations=int(best.nit),
        problems=tuple(problems),
    )


def newton(
    value_gradient: Callable[[Array], tuple[float, Array]],
    curvature: Callable[[Array, Array], Array],
    theta: Array,
    *,
    steps: int = 8,
) -> tuple[Array, float, Array, int] | None:
    """Newton steps from ``theta`` on a minimised objective until its gradient is below
    ``_NEWTON_TO``; None (the caller goes on with the quasi-Newton search) where the curvature
    is not positive definite, a step leaves the search box, or the gradient stops shrinking
    above the quasi-Newton search's own tolerance."""
    fun, grad = value_gradient(theta)
    for done in range(steps):
        size = float(np.max(np.abs(grad)))
        if size <= _NEWTON_TO:
            return theta, fun, grad, done
        h = curvature(theta, grad)
        if not np.isfinite(h).all() or float(np.linalg.eigvalsh(h).min()) <= 0:
            return None
        step = np.linalg.solve(h, -grad)
        new = theta + step
        if (np.abs(new) > LOG_BOUND - _EDGE).any():
            return None
        new_fun, new_grad = value_gradient(new)
        if not np.isfinite(new_fun) or new_fun >= 1e299:
            # The likelihood could not be evaluated there (its stand-in has a zero gradient,
            # which would pass for convergence): leave it to the quasi-Newton search.
            return None
        if not float(np.max(np.abs(new_grad))) < size:
            # At the rounding floor: keep the point if it is as flat as the search asks.
            return (theta, fun, grad, done) if size <= 1e-9 else None
        theta, fun, grad = new, new_fun, new_grad
    return (theta, fun, grad, steps) if float(np.max(np.abs(grad))) <= 1e-9 else None


def with_problem(fit: Fit, problem: str) -> Fit:
    return Fit(
        model=fit.model,
        params=fit.params,
        log_likelihood=fit.log_likelihood,
        customers=fit.customers,
        iterations=fit.iterations,
        problems=(*fit.problems, problem),
    )
