"""The split protocols of the recommendation family.

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

**Temporal** (a global time cutoff, as in the Netflix Prize and most sequential-recommendation
studies): every record at or after the cutoff is held out, every earlier one trains. The cutoff
is a time (seconds since 1970, or a date) or a quantile of the timestamps. Users whose records
all fall after the cutoff have no training records: they stay in the test set as cold-start
users, as strikers do in the Data Strikes protocol (the model serves them as it serves anyone
it never saw).

**Leave-one-out** (as in NCF and most implicit-feedback studies): each user's latest record is
held out; equal latest times are broken in a random order drawn from the seed. Users with a
single record keep it in training (they are never judged, as in the per-user holdout).

Temporal and leave-one-out are judged as the holdout is: top-``k`` lists over every item the
user has no training record for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalever.core.task import Fold
from datalever.data.contributions import Contributions
from datalever.errors import DataleverError


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


def _timestamps(data: Contributions, protocol: str) -> np.ndarray:
    """The records' timestamps as float64, or a clear error for data without them."""
    if "timestamp" not in data.records:
        raise DataleverError(
            f"The {protocol} protocol splits records by time, but {data.name} has no timestamps.",
            'map a timestamp column (columns = {..., timestamp = "time"}), or use the '
            "data-strikes or holdout protocol.",
        )
    return data.records["timestamp"].to_numpy(np.float64)


def cutoff_seconds(cutoff: float | int | str) -> float:
    """A cutoff as seconds since 1970: a number as it is, a date (UTC unless it says) parsed."""
    if isinstance(cutoff, (int, float)):
        return float(cutoff)
    import pandas as pd

    try:
        stamp = pd.Timestamp(cutoff)
    except (ValueError, TypeError, OverflowError):
        raise DataleverError(
            f"The temporal cutoff {cutoff[:60]!r} is not a date or a number.",
            'give seconds since 1970 (cutoff = 893286638) or a date (cutoff = "1998-03-01").',
        ) from None
    if stamp is pd.NaT:
        raise DataleverError(
            f"The temporal cutoff {cutoff[:60]!r} is not a date.",
            'give seconds since 1970 or a date such as "1998-03-01".',
        )
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return (stamp - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _when(seconds: float) -> str:
    """A time for messages: the date and the number of seconds."""
    import pandas as pd

    try:
        date = pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError):
        return f"{seconds:,.0f}"
    return f"{date} ({seconds:,.0f})"


@dataclass(frozen=True)
class TemporalProtocol(Protocol):
    """Records at or after a global cutoff are held out. ``cutoff`` is a time (seconds since
    1970 or a date); without one, the cutoff is the ``quantile`` of the timestamps (the
    smallest timestamp at or above it, so that share of records, or a little less, trains)."""

    cutoff: float | int | str | None = None
    quantile: float = 0.8
    kind = "temporal"
    mode = "topn"

    def cutoff_time(self, data: Contributions) -> float:
        """The cutoff in seconds since 1970, checked to leave records on both sides."""
        ts = _timestamps(data, self.kind)
        first, last = float(ts.min()), float(ts.max())
        if self.cutoff is not None:
            at = cutoff_seconds(self.cutoff)
            where = f"The temporal cutoff {_when(at)}"
        else:
            at = float(np.quantile(ts, self.quantile, method="higher"))
            where = f"The {self.quantile:g} quantile of {data.name}'s timestamps, {_when(at)},"
        span = f"{data.name}'s records run from {_when(first)} to {_when(last)}"
        if at <= first:
            raise DataleverError(
                f"{where} is at or before the first record, so nothing would train ({span}).",
                "give a later cutoff"
                + (", or a larger quantile." if self.cutoff is None else " or a quantile."),
            )
        if at > last:
            raise DataleverError(
                f"{where} is after the last record, so nothing would be held out ({span}).",
                "give an earlier cutoff, or a quantile such as quantile = 0.8.",
            )
        return at

    def check(self, data: Contributions) -> None:
        """Refuse data without timestamps, or a cutoff that leaves a side empty."""
        self.cutoff_time(data)

    def folds(self, data: Contributions, seed: int) -> list[Fold]:
        ts = _timestamps(data, self.kind)
        is_test = ts >= self.cutoff_time(data)
        return [Fold(0, np.flatnonzero(~is_test), np.flatnonzero(is_test))]


@dataclass(frozen=True)
class LeaveOneOutProtocol(Protocol):
    """Each user's latest record is held out (ties broken by the seed); users with one record
    keep it in training."""

    kind = "leave-one-out"
    mode = "topn"

    def check(self, data: Contributions) -> None:
        """Refuse data without timestamps, or where no user has two records."""
        _timestamps(data, self.kind)
        counts = np.bincount(data.records["contributor"].to_numpy())
        if counts.max(initial=0) < 2:
            raise _nothing_held_out(data)

    def folds(self, data: Contributions, seed: int) -> list[Fold]:
        ts = _timestamps(data, self.kind)
        users = data.records["contributor"].to_numpy()
        tie = np.random.default_rng([seed, 0x1E0]).random(len(users))
        order = np.lexsort((tie, ts, users))  # by user, then time, then the seeded tie order
        sorted_users = users[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = sorted_users[1:] != sorted_users[:-1]
        counts = np.bincount(users)
        held = order[last & (counts[sorted_users] >= 2)]
        if len(held) == 0:
            raise _nothing_held_out(data)
        is_test = np.zeros(len(users), dtype=bool)
        is_test[held] = True
        return [Fold(0, np.flatnonzero(~is_test), np.flatnonzero(is_test))]


def _nothing_held_out(data: Contributions) -> DataleverError:
    return DataleverError(
        f"No user of {data.name} has two or more records, so leave-one-out holds nothing out.",
        "use a dataset with repeat users, or the temporal protocol.",
    )
