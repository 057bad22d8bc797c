"""Hardt et al.'s lower bound on planting success, checked against a simulation in which its
assumptions hold: a plug-in Bayes classifier (the majority label at each point) on a discrete
distribution, with the collective's triggered points mixed in at share alpha."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.levers.aca import planting_lower_bound, trigger_mass


def bayes_success(alpha: float, xi: float, rng: np.random.Generator, n: int = 400_000) -> float:
    """Success of the Bayes classifier of the mixture: points 0..49 are the triggered ones.
    Without the collective, a share xi of the data sits on them with labels spread over
    classes 1..3; the collective puts its mass there with label 0."""
    points, classes = 50, 4
    base_mass = np.full(points, xi / points)
    collective = rng.dirichlet(np.ones(points))
    # the class mass at each triggered point: the collective's on class 0, the rest's spread
    mass = np.zeros((points, classes))
    mass[:, 0] = alpha * collective
    mass[:, 1:] = (1 - alpha) * base_mass[:, None] * rng.dirichlet(np.ones(3), size=points)
    # estimate the mixture from a finite sample, as a learner would, then predict the majority
    counts = rng.multinomial(n, np.append(mass.ravel(), max(0.0, 1 - mass.sum())))[:-1]
    predicted = counts.reshape(points, classes).argmax(axis=1)
    return float(collective[predicted == 0].sum())


@pytest.mark.parametrize("xi", [0.0, 0.001, 0.01, 0.05])
@pytest.mark.parametrize("alpha", [0.005, 0.02, 0.1, 0.3])
def test_a_bayes_optimal_learner_meets_the_bound(alpha, xi):
    rng = np.random.default_rng([int(alpha * 1000), int(xi * 1000)])
    success = np.mean([bayes_success(alpha, xi, rng) for _ in range(5)])
    assert success >= planting_lower_bound(alpha, xi) - 0.02


def test_the_bound_by_hand():
    assert planting_lower_bound(0.5, 0.1) == pytest.approx(0.9)  # 1 − 1 × 0.1
    assert planting_lower_bound(0.2, 0.05, epsilon=0.01) == pytest.approx(1 - 4 * 0.05 - 0.05)
    assert planting_lower_bound(0.01, 0.5) == 0.0  # clipped
    assert planting_lower_bound(0.0, 0.0) == 0.0  # no collective, no promise
    np.testing.assert_allclose(planting_lower_bound(np.array([0.5, 1.0]), 0.1), [0.9, 1.0])


def test_trigger_mass_counts_examples_already_carrying_the_trigger():
    X = np.array([[0, 16, 16], [0, 16, 0], [1, 16, 16], [0, 0, 0]], dtype=float)
    assert trigger_mass(X, np.array([1, 2]), 16.0) == 0.5
    assert trigger_mass(X[:0], np.array([1]), 16.0) == 0.0
