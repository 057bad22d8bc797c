"""Split protocols for code: each contributor's files split apart, before any lever acts.

A contributor is judged on files of their own that no model saw ("their style"), so the split
is per contributor: **holdout** keeps ``round(test_fraction × n)`` of each contributor's ``n``
files for testing, at least one when they have two or more files and at most ``n − 1`` (a
contributor with a single file keeps it in training and has no held-out code); **data-strikes**
deals each contributor's shuffled files round-robin into ``k`` folds, the deal running on from
one contributor to the next, so every contributor is split as evenly as their files allow.
Both draw only from the seed, so a run repeats exactly.
"""

from __future__ import annotations

import numpy as np

from datalever.core.task import Fold

_KFOLD_STREAM = 0xC0DE
_HOLDOUT_STREAM = 0xC0D1


def _by_contributor(contributors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """File positions sorted by contributor, shuffled within each contributor."""
    return np.lexsort((rng.random(len(contributors)), contributors))


def contributor_kfold(contributors: np.ndarray, n_folds: int, seed: int) -> list[Fold]:
    """``n_folds`` folds whose test sets partition the files, each contributor's files dealt
    evenly among them."""
    rng = np.random.default_rng([seed, _KFOLD_STREAM])
    order = _by_contributor(contributors, rng)
    fold_of = np.empty(len(order), dtype=np.int64)
    fold_of[order] = np.arange(len(order)) % n_folds
    return [
        Fold(k, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)
    ]


def contributor_holdout(contributors: np.ndarray, test_fraction: float, seed: int) -> list[Fold]:
    """One fold holding out ``test_fraction`` of each contributor's files."""
    rng = np.random.default_rng([seed, _HOLDOUT_STREAM])
    order = _by_contributor(contributors, rng)
    counts = np.bincount(contributors)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    wanted = np.clip(np.round(test_fraction * counts), 1, np.maximum(counts - 1, 0)).astype(int)
    wanted[counts < 2] = 0
    rank = np.arange(len(order)) - np.repeat(starts, counts)  # position within contributor
    held = rank < np.repeat(wanted, counts)
    test = np.zeros(len(order), dtype=bool)
    test[order[held]] = True
    return [Fold(0, np.flatnonzero(~test), np.flatnonzero(test))]
