"""A dataset's contributors as the registry sees them: which of them reserved a purpose.

A contributor of a dataset datalever loads (a MovieLens user, a code package, a classification
example's author) is the work ``contributor:<dataset>/<id>``, where ``<dataset>`` is the name
the registry knows the dataset by and ``<id>`` the contributor's id in the data. One bulk
decision answers every contributor at once, as consent stood at a moment, so the opt-out lever
and the dataset filter take exactly the set the registry held then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from datalever.registry.registry import Decision, Registry


def contributor_work(dataset: str, contributor_id: object) -> str:
    """The work id of one contributor of ``dataset``."""
    return f"contributor:{dataset}/{contributor_id}"


@dataclass(frozen=True)
class ReservedSet:
    """The contributors a registry reserved for a purpose, as of a snapshot."""

    reserved: np.ndarray  # a boolean mask over the data's contributor codes
    decisions: list[Decision]  # one per contributor, in code order
    snapshot: int
    policy: str

    @property
    def codes(self) -> np.ndarray:
        """The reserved contributors' codes, increasing."""
        return np.flatnonzero(self.reserved)

    def digest(self) -> str:
        """A short digest of who is reserved, for scenario keys: the same set gives the same
        key whichever registry snapshot it came from."""
        return hashlib.sha256(self.codes.astype("<i8").tobytes()).hexdigest()[:16]


def reserved_contributors(
    registry: Registry,
    dataset: str,
    contributor_ids: np.ndarray,
    purpose: str,
    as_of: datetime | str | None = None,
) -> ReservedSet:
    """Which of ``contributor_ids`` (a dataset's ids, by code) the registry reserves for
    ``purpose`` in ``dataset``, as of ``as_of`` (now by default): one bulk decision."""
    works = [contributor_work(dataset, i) for i in np.asarray(contributor_ids).tolist()]
    decisions = registry.decide(dataset, works, purpose, as_of=as_of)
    reserved = np.fromiter((d.outcome == "reserved" for d in decisions), bool, len(decisions))
    snapshot = decisions[0].snapshot if decisions else registry.snapshot(as_of)
    return ReservedSet(reserved, decisions, snapshot, registry.dataset_policy(dataset, as_of=as_of))
