"""Where labelled examples come from: the embedded digits, or a CSV/Parquet table.

A table needs a ``label`` column; ``contributor`` names who made each example (one contributor
per row when left out); the features are the ``features`` columns (comma-separated), or every
other column, all numeric; or a ``text`` column turned into word counts by a named vectoriser.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from datalever.data.guard import column_preview, regular_file, shown, user_path
from datalever.data.tabular import read_table, table_header
from datalever.errors import DataleverError
from datalever.tasks.classify.examples import LabelledExamples, load_digits_dataset

#: Datasets that ship with datalever's dependencies, so they need no download.
EMBEDDED = {"digits": load_digits_dataset}
#: Our names for a classification table's columns.
FIELDS = ("label", "contributor", "features", "text")
#: ``hashing`` or ``hashing:N``: word counts hashed into N columns (default 4,096).
VECTORISER = re.compile(r"^hashing(?::(\d+))?$")
MAX_HASHED_FEATURES = 1 << 20


def vectoriser_features(name: str) -> int:
    """The number of columns the vectoriser ``name`` makes, or an error naming the forms."""
    m = VECTORISER.match(name.strip().lower())
    n = int(m.group(1)) if m and m.group(1) else 4096
    if not m or not 2 <= n <= MAX_HASHED_FEATURES:
        raise DataleverError(
            f"Unknown vectoriser {shown(name, 40)!r}.",
            f"use hashing (4,096 columns) or hashing:N with N from 2 to {MAX_HASHED_FEATURES:,}.",
        )
    return n


def vectorise(texts: pd.Series, name: str) -> np.ndarray:
    """Word counts of each text hashed into columns (scikit-learn's ``HashingVectorizer``:
    stateless, so no vocabulary is learnt from held-out examples or changed by a lever)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hashing = HashingVectorizer(
        n_features=vectoriser_features(name), alternate_sign=False, norm=None
    )
    return hashing.transform(texts.fillna("").astype(str)).toarray()


def load_examples_table(
    path: Path | str,
    columns: dict[str, str],
    name: str | None = None,
    vectoriser: str | None = None,
) -> LabelledExamples:
    """Labelled examples from a CSV/TSV (optionally compressed) or Parquet table."""
    path = regular_file(user_path(path, "data file", "give the path of a table."), "data file")
    fmt, sep, found = table_header(path)
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise DataleverError(
            f"The column mapping names unknown field(s) {', '.join(map(shown, unknown))} for a "
            "classification table.",
            f"map only {', '.join(FIELDS)} (features as a comma-separated list).",
        )
    label = columns["label"]
    contributor = columns.get("contributor")
    if "text" in columns and "features" in columns:
        raise DataleverError(
            "The column mapping gives both text and features.",
            "classify by numeric feature columns or by one text column, not both.",
        )
    if "text" in columns:
        features = [columns["text"]]
        if vectoriser is None:
            raise DataleverError(
                f"The text column {shown(columns['text'], 40)!r} needs a vectoriser.",
                'add vectoriser = "hashing" to the spec\'s [data] table.',
            )
    elif "features" in columns:
        features = [c.strip() for c in columns["features"].split(",") if c.strip()]
    else:
        features = [c for c in found if c not in (label, contributor)]
    used = [label, *([contributor] if contributor else []), *features]
    missing = [c for c in dict.fromkeys(used) if c not in found]
    if missing:
        raise DataleverError(
            f"{shown(path.name)} lacks the column(s) {', '.join(shown(c, 40) for c in missing)} "
            f"(columns found: {column_preview(found)}).",
            "map label (and contributor, features or text) to columns the file has.",
        )
    if not features:
        raise DataleverError(
            f"{shown(path.name)} has no feature columns besides the label and contributor.",
            "give numeric feature columns, or a text column with a vectoriser.",
        )
    df = read_table(path, fmt, sep, found, list(dict.fromkeys(used)))
    if "text" in columns:
        X = vectorise(df[columns["text"]], vectoriser)
    else:
        table = df[features]
        text_cols = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
        if text_cols:
            raise DataleverError(
                f"The feature column(s) {', '.join(shown(c, 40) for c in text_cols[:5])} of "
                f"{shown(path.name)} are not numeric.",
                "name numeric columns as features, or give one text column as text with "
                'vectoriser = "hashing".',
            )
        X = table.to_numpy(dtype=np.float64)
    return LabelledExamples.from_arrays(
        name or path.name.split(".")[0] or path.name,
        X,
        df[label].to_numpy(),
        df[contributor].to_numpy() if contributor else None,
        feature_names=features if "text" not in columns else None,
        vectoriser=vectoriser,
        source=shown(path, 200),
    )
