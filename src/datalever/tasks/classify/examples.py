"""Labelled examples: the records of the classification task family.

Every example has numeric features, a class label and a contributor (one per example, as for
a photo or a résumé, or several examples per contributor). Classes and contributors are coded
as dense integers once, at load time, so collectives, deltas, learners and metrics work on
plain numpy arrays, as for ratings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datalever.errors import DataleverError

#: The largest feature magnitude accepted. Learners sum squares of features over examples
#: (variances, Gram matrices); squares of values beyond 1e150 pass 1e300 and such sums overflow
#: to infinity, so larger values are refused when loaded rather than failing mid-run.
MAX_FEATURE_MAGNITUDE = 1e150


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
    #: The checksum, worked out once (hashing the data again costs a pass over it).
    _checksum: str | None = field(default=None, init=False, repr=False, compare=False)

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

    def class_code(self, name: str | None, purpose: str) -> int:
        """The code of the class called ``name``, or a clear error naming the classes; a
        lever's ``purpose`` ("flip labels to") says what the class was wanted for."""
        from datalever.data.guard import shown

        names = [str(c) for c in self.class_names]
        listed = ", ".join(shown(n, 40) for n in names[:20]) + (" …" if len(names) > 20 else "")
        if name is None:
            raise DataleverError(
                f"A class to {purpose} is needed.", f"give target = one of {listed}."
            )
        if name not in names:
            raise DataleverError(
                f"{shown(self.name)} has no class {shown(name, 40)!r} to {purpose}.",
                f"use one of: {listed}.",
            )
        return names.index(name)

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
        if self._checksum is not None:
            return self._checksum
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.features, dtype=np.float64).tobytes())
        for col in ("contributor", "label"):
            h.update(np.ascontiguousarray(self.records[col].to_numpy(np.int64)).tobytes())
        h.update(np.asarray(self.class_names).astype(str).astype("U").tobytes())
        h.update(np.asarray(self.contributor_ids).astype(str).astype("U").tobytes())
        h.update(str(self.vectoriser).encode())
        self._checksum = h.hexdigest()[:16]
        return self._checksum

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
        if X.max() > MAX_FEATURE_MAGNITUDE or X.min() < -MAX_FEATURE_MAGNITUDE:
            bad = int((np.abs(X) > MAX_FEATURE_MAGNITUDE).any(axis=1).sum())
            raise DataleverError(
                f"{bad:,} example(s) of {where} have feature values beyond ±"
                f"{MAX_FEATURE_MAGNITUDE:g}, whose squares overflow the learners' sums.",
                "rescale the features (standardise them, or take logarithms) before loading.",
            )
        y = _ids(y, "label", where)
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
        if 2 * len(classes) > len(y):
            raise DataleverError(
                f"{where} has {len(classes):,} classes among {len(y):,} examples, fewer than two "
                "examples per class, so no class can be both learnt and tested (is the label "
                "column an id?).",
                "map label to the column of classes, with several examples of each.",
            )
        if contributors is None:
            contributors = np.arange(len(X))
        contributors = _ids(contributors, "contributor id", where)
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


def _ids(values: np.ndarray, what: str, where: str) -> np.ndarray:
    """Labels or contributor ids as values that can be told apart, sorted and printed.

    Text, numbers, booleans and dates are such values; bytes (text of no known encoding),
    lists and tables are not. A column mixing them (as a CSV table does when pandas reads its
    first rows as numbers and later ones, after a word, as text) has every value written as
    text, numbers in their shortest form (``7`` and ``7.0`` are ``"7"``), so the same value in
    two parts of a file is one class and one contributor, not two.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataleverError(
            f"The {what}s of {where} must be one value per example; got shape {values.shape}.",
            f"give one {what} per example.",
        )
    if values.dtype != object:
        return values
    families = {_family(k) for k in pd.Series(values).dropna().map(type).unique()}
    if None in families:
        raise DataleverError(
            f"Some {what}s of {where} are not text, real numbers or dates (but bytes, lists, "
            "tables or the like).",
            f"give {what}s as text or numbers; cast a binary column to text before loading.",
        )
    if len(families) > 1:
        return np.array([v if pd.isna(v) else _as_text(v) for v in values], dtype=object)
    return values


def _family(kind: type) -> str | None:
    """Which values compare with which: text, real numbers (booleans among them) or times;
    None for what cannot name a class (bytes, complex numbers, containers)."""
    if issubclass(kind, str):
        return "text"
    if issubclass(kind, numbers.Real | decimal.Decimal | np.bool_):
        return "number"
    if issubclass(kind, dt.date | dt.time | dt.timedelta | np.datetime64 | np.timedelta64):
        return "time"
    return None


def _as_text(value: object) -> str:
    """``value`` as text; a number, or text that reads as one, in its shortest form."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


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
