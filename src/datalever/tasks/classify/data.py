"""Where labelled examples come from: the embedded digits, or a CSV/Parquet table.

A table needs a ``label`` column; ``contributor`` names who made each example (one contributor
per row when left out); the features are the ``features`` columns (comma-separated), or every
other column, all numeric; or a ``text`` column turned into word counts by a named vectoriser.
Each column has one role: a label that is also a feature would leak the answer into the model.

A table is user input, so its size is bounded before anything big is built: at most
:data:`MAX_COLUMNS` columns (counted from the header line, before the table is parsed) and a
vectorised feature matrix no larger than the cap on data files
(:func:`~datalever.data.guard.max_decompressed_bytes`), since a few short texts hashed into a
million columns are a bomb as surely as a compressed file is.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from datalever.data.guard import (
    MAX_DECOMPRESSED_ENV,
    column_preview,
    max_decompressed_bytes,
    open_capped,
    regular_file,
    shown,
    user_path,
)
from datalever.data.tabular import CSV_SUFFIXES, read_table, table_format, table_header
from datalever.errors import DataleverError
from datalever.tasks.classify.examples import LabelledExamples, load_digits_dataset

#: Datasets that ship with datalever's dependencies, so they need no download.
EMBEDDED = {"digits": load_digits_dataset}
#: Our names for a classification table's columns.
FIELDS = ("label", "contributor", "features", "text")
#: ``hashing`` or ``hashing:N``: word counts hashed into N columns (default 4,096).
VECTORISER = re.compile(r"^hashing(?::(\d+))?$")
MAX_HASHED_FEATURES = 1 << 20
#: Most columns a labelled table may have. Wider tables are refused from their header line:
#: parsing a header of 100,000 columns alone takes pandas tens of seconds, and such features
#: are better given as one text column with a vectoriser, or reduced before loading.
MAX_COLUMNS = 10_000


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

    n_features = vectoriser_features(name)
    need, cap = 8 * len(texts) * n_features, max_decompressed_bytes()
    if need > cap:
        raise DataleverError(
            f"Hashing {len(texts):,} texts into {n_features:,} columns makes {need:,} bytes of "
            f"features, more than the limit of {cap:,} for data files.",
            "use fewer hashed columns (such as hashing:4096), or raise the limit with "
            f"{MAX_DECOMPRESSED_ENV}.",
        )
    hashing = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None)
    return hashing.transform(texts.fillna("").astype(str)).toarray()


def header_width(path: Path) -> int:
    """How many columns the header line of a CSV/TSV table names (quotes respected; for a .txt
    table, whose separator is sniffed later, the most any usual separator splits it into),
    read without parsing the table. 0 for Parquet, whose schema is cheap to read."""
    if table_format(path) == "parquet":
        return 0
    suffixes = [s.lower() for s in path.suffixes if s.lower() in CSV_SUFFIXES]
    sep = CSV_SUFFIXES.get(suffixes[-1] if suffixes else ".csv")
    with open_capped(path, header_only=True) as handle:
        line = handle.readline().decode("utf-8", errors="replace")
    return max(_fields(line, d) for d in sep or ",\t;| ")


def _fields(line: str, sep: str) -> int:
    """The fields of one line split at ``sep``; where the csv module gives up (a name longer
    than its field limit), the separators counted, quotes or not."""
    try:
        return len(next(csv.reader([line], delimiter=sep), []))
    except csv.Error:
        return line.count(sep) + 1


def _check_width(path: Path, width: int) -> None:
    if width > MAX_COLUMNS:
        raise DataleverError(
            f"{shown(path.name)} has {width:,} columns; a labelled table may have at most "
            f"{MAX_COLUMNS:,}.",
            "select or project the features before loading (keeping at most "
            f"{MAX_COLUMNS:,} columns), or give text as one text column with "
            'vectoriser = "hashing".',
        )


def load_examples_table(
    path: Path | str,
    columns: dict[str, str],
    name: str | None = None,
    vectoriser: str | None = None,
) -> LabelledExamples:
    """Labelled examples from a CSV/TSV (optionally compressed) or Parquet table."""
    path = regular_file(user_path(path, "data file", "give the path of a table."), "data file")
    _check_mapping(columns)
    _check_width(path, header_width(path))
    fmt, sep, found = table_header(path)
    _check_width(path, len(found))
    label = columns["label"]
    contributor = columns.get("contributor")
    if "text" in columns:
        features = [columns["text"]]
    elif "features" in columns:
        features = [c.strip() for c in columns["features"].split(",") if c.strip()]
    else:
        features = [c for c in found if c not in (label, contributor)]
    counts = Counter(found)
    used = [label, *([contributor] if contributor else []), *features]
    twice = sorted({c for c in used if counts[c] > 1})
    if twice:
        raise DataleverError(
            f"{shown(path.name)} has more than one column named "
            f"{', '.join(repr(shown(c, 40)) for c in twice[:5])}, so which one is meant is "
            "unclear.",
            "give the file's columns distinct names.",
        )
    _check_roles(label, contributor, features, "text" in columns)
    missing = [c for c in used if c not in counts]
    if missing:
        listed = ", ".join(shown(c, 40) for c in missing[:5])
        more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
        raise DataleverError(
            f"{shown(path.name)} lacks the column(s) {listed}{more} "
            f"(columns found: {column_preview(found)}).",
            "map label (and contributor, features or text) to columns the file has.",
        )
    if not features:
        raise DataleverError(
            f"{shown(path.name)} has no feature columns besides the label and contributor.",
            "give numeric feature columns, or a text column with a vectoriser.",
        )
    if "text" in columns and vectoriser is None:
        raise DataleverError(
            f"The text column {shown(columns['text'], 40)!r} needs a vectoriser to become "
            "features.",
            'add vectoriser = "hashing" to the spec\'s [data] table (or pass --vectoriser hashing '
            "to `datalever data info`).",
        )
    df = read_table(path, fmt, sep, found, used)
    # Parquet files written by pandas keep non-text column names (0, 1) in their metadata,
    # and reading them back restores those; the mapping names columns as text.
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataleverError(
            f"{shown(path.name)} has a header but no examples.",
            "give a table with a header row and at least one example per class.",
        )
    if "text" in columns:
        X = vectorise(df[columns["text"]], vectoriser)
    else:
        table = df[features]
        text_cols = [c for c, kind in table.dtypes.items() if not _numeric(kind)]
        if text_cols:
            raise DataleverError(
                f"The feature column(s) {', '.join(shown(c, 40) for c in text_cols[:5])}"
                f"{' …' if len(text_cols) > 5 else ''} of {shown(path.name)} are not numeric.",
                "name numeric columns as features, or give one text column as text with "
                'vectoriser = "hashing".',
            )
        X = table.to_numpy(dtype=np.float64)
    return LabelledExamples.from_arrays(
        # The name is shown in messages and reports: printable, whatever the file is called.
        shown(name or path.name.split(".")[0] or path.name, 200),
        X,
        df[label].to_numpy(),
        df[contributor].to_numpy() if contributor else None,
        feature_names=features if "text" not in columns else None,
        vectoriser=vectoriser,
        source=shown(path, 200),
    )


def _numeric(kind: object) -> bool:
    """Numbers and booleans (as 0/1) are features; text, dates, lists and the like are not."""
    return pd.api.types.is_numeric_dtype(kind) and not isinstance(kind, pd.CategoricalDtype)


def _check_mapping(columns: dict[str, str]) -> None:
    """The column mapping of a labelled table: known fields, a label, text or features."""
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
    ):
        raise DataleverError(
            "The column mapping must map field names to column names, both as text.",
            'write it as e.g. {label = "digit", contributor = "writer"}.',
        )
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise DataleverError(
            f"The column mapping names unknown field(s) {', '.join(map(shown, unknown))} for a "
            "classification table.",
            f"map only {', '.join(FIELDS)} (features as a comma-separated list).",
        )
    if "label" not in columns:
        raise DataleverError(
            "The column mapping of a classification table names no label column.",
            'map label to the column holding each example\'s class, e.g. {label = "digit"}.',
        )
    if "text" in columns and "features" in columns:
        raise DataleverError(
            "The column mapping gives both text and features.",
            "classify by numeric feature columns or by one text column, not both.",
        )


def _check_roles(label: str, contributor: str | None, features: list[str], text: bool) -> None:
    """Each column in one role: a label among the features (or text) would hand the model
    the answer, and a contributor column that is the label or a feature makes "who gave this
    example" and "what it says" one thing."""
    what = "text" if text else "features"
    if label in features:
        raise DataleverError(
            f"The column {shown(label, 40)!r} is mapped as the label and among the {what}, so "
            "the model would be given the answer.",
            f"leave the label column out of {what}.",
        )
    if contributor is not None and contributor in (label, *features):
        role = "label" if contributor == label else what
        raise DataleverError(
            f"The column {shown(contributor, 40)!r} is mapped as the contributor and as the "
            f"{role}.",
            "map the contributor to a column of its own, or leave it out (one contributor per "
            "example).",
        )
    twice = sorted(f for f, n in Counter(features).items() if n > 1)
    if twice:
        raise DataleverError(
            f"The features list names {', '.join(repr(shown(f, 40)) for f in twice[:5])} more "
            "than once.",
            "list each feature column once.",
        )
