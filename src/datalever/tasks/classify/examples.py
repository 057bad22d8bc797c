"""Labelled examples: the records of the classification task family.

Every example has numeric features, a class label and a contributor (one per example, as for
a photo or a résumé, or several examples per contributor). Classes and contributors are coded
as dense integers once, at load time, so collectives, deltas, learners and metrics work on
plain numpy arrays, as for ratings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datalever.errors import DataleverError


@dataclass(frozen=True)
class ExampleSet:
    """The examples a classifier is fitted on: features ``X`` (n × d, float64), class codes
    ``y`` (n, in ``0..n_classes-1``) and each example's contributor code."""

    X: np.ndarray
    y: np.ndarray
    contributors: np.ndarray
    n_classes: int

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def subset(self, index: np.ndarray) -> ExampleSet:
        """The examples at ``index`` (positions or a boolean mask)."""
        return ExampleSet(self.X[index], self.y[index], self.contributors[index], self.n_classes)

    def concat(self, other: ExampleSet) -> ExampleSet:
        return ExampleSet(
            np.concatenate([self.X, other.X]),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.contributors, other.contributors]),
            self.n_classes,
        )

    def digest_parts(self) -> tuple[np.ndarray | str, ...]:
        return (self.X, self.y, f"{self.n_classes}")


@dataclass
class LabelledExamples:
    """A classification dataset whose every example carries its contributor id.

    ``features`` is the n × d matrix; ``records`` has columns ``contributor`` and ``label``
    (dense codes); ``class_names`` and ``contributor_ids`` map codes back to the source's
    values; ``contributors`` holds contributor attributes (``label`` when each contributor's
    examples share one class, so ``label:7`` names the contributors of sevens).
    """

    name: str
    features: np.ndarray
    records: pd.DataFrame
    contributor_ids: np.ndarray
    class_names: np.ndarray
    feature_names: list[str]
    contributors: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: How text was turned into features (``None`` for numeric features), recorded and keyed.
    vectoriser: str | None = None
    notes: list[str] = field(default_factory=list)

    task = "classification"

    @property
    def n_contributors(self) -> int:
        return len(self.contributor_ids)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def width(self) -> int:
        """The dimension beside the records that learners' state grows with: features."""
        return self.n_features

    @property
    def labels(self) -> np.ndarray:
        return self.records["label"].to_numpy(np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def training_set(self, index: np.ndarray | None = None) -> ExampleSet:
        """All examples (or those at ``index``) as an :class:`ExampleSet`."""
        es = ExampleSet(
            self.features,
            self.labels,
            self.records["contributor"].to_numpy(np.int32),
            self.n_classes,
        )
        return es if index is None else es.subset(index)

    def checksum(self) -> str:
        """A content hash of the examples, so results name exactly the data they came from."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.features, dtype=np.float64).tobytes())
        for col in ("contributor", "label"):
            h.update(np.ascontiguousarray(self.records[col].to_numpy(np.int64)).tobytes())
        h.update(np.asarray(self.class_names).astype(str).astype("U").tobytes())
        h.update(np.asarray(self.contributor_ids).astype(str).astype("U").tobytes())
        h.update(str(self.vectoriser).encode())
        return h.hexdigest()[:16]

    @classmethod
    def from_arrays(
        cls,
        name: str,
        X: np.ndarray,
        y: np.ndarray,
        contributors: np.ndarray | None = None,
        *,
        feature_names: list[str] | None = None,
        vectoriser: str | None = None,
        source: str | None = None,
    ) -> LabelledExamples:
        """Build a dataset from a feature matrix, labels and (optionally) contributor ids (one
        contributor per example when not given), validating them."""
        where = source or name
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataleverError(
                f"The features of {where} must be a table of examples × features; got shape "
                f"{X.shape}.",
                "give at least one example and one numeric feature column.",
            )
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise DataleverError(
                f"The features of {where} are not all numbers ({X.dtype}).",
                "give numeric feature columns, or a text column with a vectoriser.",
            )
        X = X.astype(np.float64)
        if not np.isfinite(X).all():
            bad = int((~np.isfinite(X)).any(axis=1).sum())
            raise DataleverError(
                f"{bad:,} example(s) of {where} have missing or infinite feature values.",
                "fill or drop them before loading.",
            )
        y = np.asarray(y)
        if len(y) != len(X):
            raise DataleverError(
                f"{where} has {len(X):,} examples but {len(y):,} labels.",
                "give one label per example.",
            )
        if pd.isna(pd.Series(y)).any():
            raise DataleverError(
                f"{int(pd.isna(pd.Series(y)).sum()):,} example(s) of {where} have no label.",
                "drop unlabelled examples, or give them a label.",
            )
        codes, classes = pd.factorize(pd.Series(y), sort=True)
        if len(classes) < 2:
            raise DataleverError(
                f"Every example of {where} has the same label, so there is nothing to classify.",
                "give examples of at least two classes.",
            )
        if contributors is None:
            contributors = np.arange(len(X))
        contributors = np.asarray(contributors)
        if len(contributors) != len(X):
            raise DataleverError(
                f"{where} has {len(X):,} examples but {len(contributors):,} contributor ids.",
                "give one contributor id per example.",
            )
        if pd.isna(pd.Series(contributors)).any():
            raise DataleverError(
                f"Some examples of {where} have no contributor id.",
                "give every example a contributor, or leave the contributor column out "
                "(one contributor per example).",
            )
        who, ids = pd.factorize(pd.Series(contributors), sort=True)
        records = pd.DataFrame({"contributor": who.astype(np.int32), "label": codes})
        # A contributor whose examples all share one class has that class as an attribute.
        per = records.groupby("contributor")["label"].agg(["min", "max"])
        attrs = pd.DataFrame(index=pd.RangeIndex(len(ids)))
        if (per["min"] == per["max"]).all():
            attrs["label"] = np.asarray(classes).astype(str)[per["min"].to_numpy()]
        names = feature_names or [f"x{i}" for i in range(X.shape[1])]
        return cls(
            name=name,
            features=X,
            records=records,
            contributor_ids=np.asarray(ids),
            class_names=np.asarray(classes),
            feature_names=list(names),
            contributors=attrs,
            vectoriser=vectoriser,
        )


def load_digits_dataset() -> LabelledExamples:
    """The handwritten digits that ship inside scikit-learn: 1,797 images of 8 × 8 pixels
    (values 0–16), ten classes, one contributor per image. Offline: the file is in the wheel."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = LabelledExamples.from_arrays(
        "digits",
        digits.data,
        digits.target,
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
    )
    data.contributors["label"] = data.contributors["label"].astype(str)
    return data
