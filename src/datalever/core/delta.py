"""Deltas: how a scenario's training data differs from a fold's base training set.

Every lever is expressed as a delta (records removed, records added), whatever the task: a
strike removes, vandalism removes and adds altered copies, junk examples and fake profiles only
add, and may bring new contributors and items with them. Learners see only deltas, never levers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import numpy as np


@runtime_checkable
class Records(Protocol):
    """A task's training records as arrays of equal length (a recommender's ratings, a
    classifier's labelled examples)."""

    def __len__(self) -> int: ...

    def subset(self, index: np.ndarray) -> Self:
        """The records at ``index`` (positions or a boolean mask)."""
        ...

    def concat(self, other: Self) -> Self:
        """These records followed by ``other``'s."""
        ...

    def digest_parts(self) -> tuple[np.ndarray | str, ...]:
        """Everything that decides a fit on these records, for fingerprints."""
        ...


@dataclass(frozen=True)
class Delta:
    """Records removed (positions into the base training set) and records added (``None``:
    nothing added)."""

    removed: np.ndarray
    added: Records | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing removed and nothing added: the base training set itself."""
        return len(self.removed) == 0 and (self.added is None or len(self.added) == 0)

    def fingerprint(self) -> str:
        """A digest of what the delta changes: equal digests mean equal training sets, so
        scenarios whose levers make the same change (a strike and a boycott of the same
        draw) share one fit."""
        digest = hashlib.sha256(np.ascontiguousarray(self.removed, dtype=np.int64).tobytes())
        if self.added is not None:
            for part in self.added.digest_parts():
                if isinstance(part, str):
                    digest.update(f"|{part}".encode())
                    continue
                part = np.ascontiguousarray(part)
                digest.update(f"|{part.dtype}|{part.shape}|".encode() + part.tobytes())
        return digest.hexdigest()

    def apply(self, base: Records) -> Records:
        """The modified training set: the plain computation every fast path must equal."""
        keep = np.ones(len(base), dtype=bool)
        keep[self.removed] = False
        train = base.subset(keep)
        return train if self.added is None else train.concat(self.added)
