"""The two split protocols.

**Data Strikes** (Vincent, Hecht & Sen, WWW 2019): records are split 5-fold at the rating
level. A striker's records leave training, but the striker's records in fold ``k`` stay in
fold ``k``'s test set, so strikers remain in evaluation as cold-start users. We assign every
record to one fold once, from the seed, before any strike is drawn; a strike then only removes
the strikers' training records. This is the published protocol, with one improvement: the
struck and the no-strike model are judged on exactly the same test records in every fold, so
their comparison is paired (the published code split strikers and non-strikers separately, so
fold contents differed between the two).

**Per-user holdout** (as LensKit evaluates top-N recommendation): for each user a random
``test_fraction`` of their records (at least one, for users with two or more) is held out; the
model recommends the top ``k`` of all items the user has no training record for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalever.core.task import Fold
from datalever.data.contributions import Contributions


class Protocol:
    """Base class: a named split into folds, and the evaluation mode it implies."""

    kind: str
    mode: str

    def folds(self, data: Contributions, seed: int) -> list[Fold]:
        raise NotImplementedError


@dataclass(frozen=True)
class DataStrikesProtocol(Protocol):
    n_folds: int = 5
    kind = "data-strikes"
    mode = "ratings"

    def folds(self, data: Contributions, seed: int) -> list[Fold]:
        n = len(data)
        perm = np.random.default_rng([seed, 0xF01D]).permutation(n)
        fold_of = np.empty(n, dtype=np.int64)
        for k, part in enumerate(np.array_split(perm, self.n_folds)):
            fold_of[part] = k
        return [
            Fold(k, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
            for k in range(self.n_folds)
        ]


@dataclass(frozen=True)
class HoldoutProtocol(Protocol):
    test_fraction: float = 0.2
    kind = "holdout"
    mode = "topn"

    def folds(self, data: Contributions, seed: int) -> list[Fold]:
        users = data.records["contributor"].to_numpy()
        rng = np.random.default_rng([seed, 0x401D])
        order = np.lexsort((rng.random(len(users)), users))
        sorted_users = users[order]
        starts = np.searchsorted(sorted_users, sorted_users, side="left")
        rank = np.arange(len(users)) - starts
        counts = np.bincount(users)
        n_test = np.where(
            counts >= 2, np.maximum(1, np.round(counts * self.test_fraction)), 0
        ).astype(np.int64)
        is_test = np.zeros(len(users), dtype=bool)
        is_test[order] = rank < n_test[sorted_users]
        return [Fold(0, np.flatnonzero(~is_test), np.flatnonzero(is_test))]
