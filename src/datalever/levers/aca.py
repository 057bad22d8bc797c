"""What theory promises a collective that plants a signal (Hardt, Mazumdar, Mendler-Dünner &
Zrnic, *Algorithmic Collective Action in Machine Learning*, ICML 2023).

A collective holding a share ``α`` of the training data plants a signal with the feature-label
strategy: its examples ``x`` become ``(g(x), y*)``, the trigger ``g`` applied and the label set
to the target ``y*``. If the firm's classifier is ε-optimal on the data it is trained on (the
Bayes-optimal classifier of a distribution within ε in total variation of it), the share of
triggered points it assigns to ``y*`` is at least::

    S(α) ≥ 1 − (1 − α) / α · ξ − ε / α

where ``ξ`` is the probability, under the data without the collective, of a point that carries
the trigger (``P₀(g(X) = x)`` summed over the triggered points): a rare trigger has ``ξ ≈ 0``,
and the bound then says any collective succeeds against a Bayes-optimal learner. The argument:
the classifier picks ``y*`` at a triggered point ``x`` whenever the collective's mass there,
``α·P*(x)``, exceeds everyone else's, ``(1 − α)·P₀(x)``; the points where it does not carry at
most ``(1 − α)/α · ξ`` of the collective's mass, and an ε-optimal classifier may err on at most
ε of the mixture, which is at most ``ε/α`` of the collective's mass.

The learners datalever fits are not Bayes-optimal (linear models on a few thousand examples),
so the measured success can fall short of the bound: the gap is how far the assumptions are
from the learner at hand. ``tests/test_aca.py`` checks the bound against a simulation in which
the assumptions hold (a plug-in Bayes classifier on a discrete distribution).
"""

from __future__ import annotations

import numpy as np


def planting_lower_bound(
    alpha: float | np.ndarray, xi: float, epsilon: float = 0.0
) -> float | np.ndarray:
    """Hardt et al.'s lower bound on the feature-label strategy's success, clipped to
    ``[0, 1]`` (0 for ``α = 0``)."""
    a = np.asarray(alpha, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = 1 - (1 - a) / a * xi - epsilon / a
    bound = np.where(a > 0, np.clip(bound, 0.0, 1.0), 0.0)
    return float(bound) if np.ndim(alpha) == 0 else bound


def trigger_mass(X: np.ndarray, features: np.ndarray, value: float) -> float:
    """``ξ``: the share of examples that already carry the trigger (every trigger feature at
    the trigger's value) before anyone acts."""
    if len(X) == 0:
        return 0.0
    return float(np.mean(np.all(X[:, features] == value, axis=1)))
