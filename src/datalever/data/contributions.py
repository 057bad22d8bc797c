"""Contributions: records (ratings) with contributor ids, contributor attributes and item metadata.

Contributors and items are coded as dense integers ``0..n-1`` once, at load time, so every later
stage (collectives, deltas, learners, metrics) works on plain numpy arrays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datalever.errors import DataleverError

RECORD_COLUMNS = ("contributor", "item", "rating")


@dataclass(frozen=True)
class TrainingSet:
    """The records a learner is fitted on, as coded arrays (all of equal length)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    n_users: int
    n_items: int
    rating_scale: tuple[float, float] = (1.0, 5.0)

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, index: np.ndarray) -> TrainingSet:
        """The records at ``index`` (positions or a boolean mask)."""
        return TrainingSet(
            self.users[index],
            self.items[index],
            self.ratings[index],
            self.n_users,
            self.n_items,
            self.rating_scale,
        )

    def concat(self, other: TrainingSet) -> TrainingSet:
        return TrainingSet(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            np.concatenate([self.ratings, other.ratings]),
            self.n_users,
            self.n_items,
            self.rating_scale,
        )


@dataclass
class Contributions:
    """A dataset whose every record carries its contributor id.

    ``records`` has columns ``contributor`` and ``item`` (dense integer codes), ``rating`` (float)
    and optionally ``timestamp``. ``contributors`` and ``items`` are indexed by code and hold
    attributes (gender, age, occupation) and metadata (title, genres as a ``|``-joined string);
    ``contributor_ids`` / ``item_ids`` map codes back to the ids of the source files.
    """

    name: str
    records: pd.DataFrame
    contributor_ids: np.ndarray
    item_ids: np.ndarray
    contributors: pd.DataFrame = field(default_factory=pd.DataFrame)
    items: pd.DataFrame = field(default_factory=pd.DataFrame)
    rating_scale: tuple[float, float] = (1.0, 5.0)

    @property
    def n_contributors(self) -> int:
        return len(self.contributor_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.records)

    def training_set(self, index: np.ndarray | None = None) -> TrainingSet:
        """All records (or those at ``index``) as a :class:`TrainingSet`."""
        r = self.records
        ts = TrainingSet(
            r["contributor"].to_numpy(np.int32),
            r["item"].to_numpy(np.int32),
            r["rating"].to_numpy(np.float64),
            self.n_contributors,
            self.n_items,
            self.rating_scale,
        )
        return ts if index is None else ts.subset(index)

    def checksum(self) -> str:
        """A content hash of the records, so results can name exactly the data they came from."""
        h = hashlib.sha256()
        for col in RECORD_COLUMNS:
            h.update(np.ascontiguousarray(self.records[col].to_numpy()).tobytes())
        h.update(np.asarray(self.contributor_ids).astype(str).astype("U").tobytes())
        return h.hexdigest()[:16]

    def genres(self) -> list[str]:
        """The genre names the item metadata knows, in first-seen order."""
        if "genres" not in self.items:
            return []
        seen: dict[str, None] = {}
        for g in self.items["genres"].dropna():
            for name in str(g).split("|"):
                if name:
                    seen.setdefault(name, None)
        return list(seen)

    @classmethod
    def from_frames(
        cls,
        name: str,
        ratings: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        rating_scale: tuple[float, float] | None = None,
    ) -> Contributions:
        """Build contributions from raw frames, validating them.

        ``ratings`` needs columns ``user``, ``item``, ``rating`` (``timestamp`` optional);
        ``users`` is indexed by user id, ``items`` by item id. Ids may be any hashable values.
        """
        missing = [c for c in ("user", "item", "rating") if c not in ratings.columns]
        if missing:
            raise DataleverError(
                f"The {name} ratings lack the column(s) {', '.join(missing)} "
                f"(columns found: {', '.join(map(str, ratings.columns)) or 'none'}).",
                "name the user, item and rating columns (for CSV/Parquet files, pass a column "
                "mapping such as user=userId,item=movieId,rating=rating).",
            )
        if len(ratings) == 0:
            raise DataleverError(
                f"The {name} dataset has no records.", "check the file or path you gave."
            )
        rating = pd.to_numeric(ratings["rating"], errors="coerce")
        bad = rating.isna() & ratings["rating"].notna() | ratings["rating"].isna()
        if bad.any():
            first = ratings.loc[bad, "rating"].iloc[0]
            raise DataleverError(
                f"The {name} ratings have {int(bad.sum())} non-numeric or missing value(s) "
                f"in the rating column (first: {first!r}).",
                "make every rating a number, or drop those rows.",
            )
        if ratings[["user", "item"]].isna().any().any():
            raise DataleverError(
                f"The {name} ratings have missing user or item ids.",
                "drop rows without a user and an item id.",
            )
        user_codes, user_ids = pd.factorize(ratings["user"], sort=True)
        item_codes, item_ids = pd.factorize(ratings["item"], sort=True)
        records = pd.DataFrame(
            {
                "contributor": user_codes.astype(np.int32),
                "item": item_codes.astype(np.int32),
                "rating": rating.to_numpy(np.float64),
            }
        )
        if "timestamp" in ratings:
            records["timestamp"] = pd.to_numeric(ratings["timestamp"], errors="coerce").to_numpy()
        contributors = (
            users.reindex(user_ids) if users is not None else pd.DataFrame(index=user_ids)
        ).reset_index(drop=True)
        item_meta = (
            items.reindex(item_ids) if items is not None else pd.DataFrame(index=item_ids)
        ).reset_index(drop=True)
        scale = rating_scale or (float(rating.min()), float(rating.max()))
        return cls(
            name=name,
            records=records,
            contributor_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
            contributors=contributors,
            items=item_meta,
            rating_scale=scale,
        )
