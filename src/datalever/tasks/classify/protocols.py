"""Stratified split protocols for classification: k folds, or one holdout.

Both keep every class's share of the test set close to its share of the data, so a fold's
metrics are not swayed by which classes the shuffle happened to favour, and both draw only
from the seed, so a run repeats exactly.

**Stratified k-fold**: each class's examples are shuffled and dealt round-robin into the folds,
the deal running on from one class to the next, so every class is split as evenly as it can be
(fold counts differ by at most one) and so are the folds' sizes. A class with fewer examples
than folds is allowed: it is then absent from the test set of some folds, and those folds'
metrics judge the other classes only.

**Stratified holdout**: a ``round(test_fraction × n_c)`` share of each class's ``n_c`` examples
(rounded half to even, as numpy rounds) is held out, at least one for a class with two or more
examples and at most ``n_c − 1``, so every class keeps a training example; a class with a single
example stays in training.
"""

from __future__ import annotations

import numpy as np

from datalever.core.task import Fold
from datalever.errors import DataleverError

#: Stream constants: the same seed draws unrelated shuffles for the two protocols (and for the
#: recommendation protocols, which use their own constants).
_KFOLD_STREAM = 0xC1F0
_HOLDOUT_STREAM = 0xC140


def _class_order(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by class, shuffled within each class, and the dense class code of each
    example (so any label values work)."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    codes = codes.reshape(-1)
    return np.lexsort((rng.random(len(codes)), codes)), codes


def stratified_kfold(labels: np.ndarray, n_folds: int, seed: int) -> list[Fold]:
    """``n_folds`` folds whose test sets partition the examples, stratified by ``labels``."""
    if not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise DataleverError(
            f"Stratified k-fold needs at least 2 folds; got {n_folds!r}.", "use folds = 5."
        )
    rng = np.random.default_rng([seed, _KFOLD_STREAM])
    order, _ = _class_order(labels, rng)
    fold_of = np.empty(len(order), dtype=np.int64)
    fold_of[order] = np.arange(len(order)) % n_folds
    return [
        Fold(k, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(n_folds)
    ]


def stratified_holdout(labels: np.ndarray, test_fraction: float, seed: int) -> list[Fold]:
    """One fold holding out ``test_fraction`` of each class's examples."""
    if not 0.0 < test_fraction < 1.0:
        raise DataleverError(
            f"The holdout share must lie strictly between 0 and 1; got {test_fraction!r}.",
            "use test_fraction = 0.2.",
        )
    rng = np.random.default_rng([seed, _HOLDOUT_STREAM])
    order, codes = _class_order(labels, rng)
    sorted_codes = codes[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_codes, sorted_codes, side="left")
    counts = np.bincount(codes)
    share = np.clip(np.round(counts * test_fraction), 1, counts - 1)
    n_test = np.where(counts >= 2, share, 0).astype(np.int64)
    is_test = np.zeros(len(order), dtype=bool)
    is_test[order] = rank < n_test[sorted_codes]
    return [Fold(0, np.flatnonzero(~is_test), np.flatnonzero(is_test))]
