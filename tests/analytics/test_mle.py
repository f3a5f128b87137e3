"""The Newton polish of a fit (analytics/mle.py) on small objectives."""

from __future__ import annotations

import numpy as np

from patron.analytics import mle


def _quadratic(theta):
    x = float(theta[0])
    return (x - 1.0) ** 2, np.array([2.0 * (x - 1.0)])


def test_newton_reaches_the_minimum_of_a_quadratic():
    got = mle.newton(_quadratic, lambda theta, grad: np.array([[2.0]]), np.array([0.0]))
    assert got is not None
    theta, fun, _, _ = got
    assert abs(theta[0] - 1.0) < 1e-12 and fun < 1e-24


def test_a_step_where_the_likelihood_cannot_be_evaluated_is_not_taken_for_convergence():
    # past x = 0.5 the objective answers the stand-in of an unevaluable likelihood (a huge value
    # with a zero gradient); a flat curvature sends the first step there
    def value_gradient(theta):
        if theta[0] > 0.5:
            return 1e300, np.zeros_like(theta)
        return _quadratic(theta)

    got = mle.newton(value_gradient, lambda theta, grad: np.array([[0.2]]), np.array([0.0]))
    assert got is None  # the quasi-Newton search goes on from where it was
