"""Interactions from any CSV or Parquet table, given which columns hold user, item and rating.

Most datasets are not MovieLens: a table of (user, item, rating[, timestamp]) under any column
names is enough to measure data leverage, so this loader asks only for a column mapping.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datalever.data.contributions import Contributions
from datalever.errors import DataleverError

#: Our column names; user, item and rating are required.
FIELDS = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item", "rating")

#: Column names recognised without a mapping (compared case-insensitively).
ALIASES = {
    "user": ("user", "user_id", "userid", "contributor", "contributor_id", "uid"),
    "item": ("item", "item_id", "itemid", "movieid", "movie_id", "iid"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "datetime"),
}

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
PARQUET_SUFFIXES = {".parquet", ".pq"}
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}


def table_format(path: Path) -> str:
    """'csv' or 'parquet' from the file name (a compression suffix such as .gz is looked past)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in CSV_SUFFIXES:
        return "csv"
    raise DataleverError(
        f"Cannot tell the format of {path} from its name (suffix {last or 'none'!r}).",
        "give a .csv, .tsv, .txt (optionally compressed, e.g. .csv.gz) or .parquet file.",
    )


def _file_columns(path: Path, fmt: str, sep: str | None) -> list[str]:
    """The header of the table, read without loading the data."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, sep=sep, nrows=0, engine="python" if sep is None else "c"))
    except pd.errors.EmptyDataError:
        raise DataleverError(
            f"The file {path} is empty.", "give a table with a header row and records."
        ) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataleverError(
            f"The file {path} could not be read as {fmt} ({exc}).",
            "check that the file is complete and of the format its name says.",
        ) from None


def _resolve(columns: dict[str, str] | None, found: list[str], path: Path) -> dict[str, str]:
    """Map our field names to the file's columns: the mapping first, then known aliases."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise DataleverError(
            f"The column mapping names unknown field(s) {', '.join(unknown)}.",
            f"map only {', '.join(FIELDS)} to the file's column names.",
        )
    bad = {ours: theirs for ours, theirs in columns.items() if theirs not in found}
    if bad:
        listing = ", ".join(f"{ours}={theirs!r}" for ours, theirs in bad.items())
        raise DataleverError(
            f"The column mapping names column(s) that {path.name} lacks: {listing} "
            f"(columns found: {', '.join(found)}).",
            f"map user, item and rating to columns that exist, e.g. {_suggest(found)}.",
        )
    lower = {c.lower(): c for c in found}
    taken = set(columns.values())
    for field in FIELDS:
        if field in columns:
            continue
        for alias in ALIASES[field]:
            col = lower.get(alias)
            if col is not None and col not in taken:
                columns[field] = col
                taken.add(col)
                break
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise DataleverError(
            f"{path.name} has no column for {', '.join(missing)} "
            f"(columns found: {', '.join(found) or 'none'}).",
            "map our names to the file's columns in the spec's [data] table, e.g. "
            f"columns = {{{_suggest_toml(found)}}}.",
        )
    return columns


def _suggest_toml(found: list[str]) -> str:
    """The suggested mapping written as a TOML inline table body."""
    pairs = [p.split("=", 1) for p in _suggest(found).split(",")]
    return ", ".join(f'{k} = "{v}"' for k, v in pairs)


def _suggest(found: list[str]) -> str:
    """A mapping to show in error messages, built from the first columns of the file."""
    pairs = [f"{ours}={theirs}" for ours, theirs in zip(FIELDS, found, strict=False)]
    if len(pairs) < len(REQUIRED):
        return "user=USER_COLUMN,item=ITEM_COLUMN,rating=RATING_COLUMN"
    return ",".join(pairs)


def load_table(
    path: Path | str,
    columns: dict[str, str] | None = None,
    name: str | None = None,
    *,
    sep: str | None = None,
    rating_scale: tuple[float, float] | None = None,
) -> Contributions:
    """Load interactions from a CSV/TSV or Parquet file.

    ``columns`` maps our names (user, item, rating, timestamp) to the file's column names;
    fields left out are matched to common names (userId, movieId, user_id, ...). ``sep``
    overrides the separator the suffix implies. The rating scale defaults to the (min, max) of
    the ratings.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataleverError(f"The file {path} does not exist.", "check the path.")
    if path.is_dir():
        raise DataleverError(
            f"{path} is a folder, not a table.",
            "give a .csv or .parquet file, or load the folder as a MovieLens/RecBole dataset.",
        )
    fmt = table_format(path)
    if fmt == "csv" and sep is None:
        suffixes = [s.lower() for s in path.suffixes if s.lower() not in COMPRESSION_SUFFIXES]
        sep = CSV_SUFFIXES.get(suffixes[-1] if suffixes else ".csv")
    found = _file_columns(path, fmt, sep)
    mapping = _resolve(columns, found, path)
    usecols = list(mapping.values())
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path, columns=usecols)
        else:
            df = pd.read_csv(
                path, sep=sep, usecols=usecols, engine="python" if sep is None else "c"
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataleverError(
            f"The file {path} could not be read as {fmt} ({exc}).",
            "check that the file is complete and of the format its name says.",
        ) from None
    ratings = df.rename(columns={theirs: ours for ours, theirs in mapping.items()})
    ratings = ratings[[f for f in FIELDS if f in mapping]]
    if "timestamp" in ratings and not pd.api.types.is_numeric_dtype(ratings["timestamp"]):
        parsed = pd.to_datetime(ratings["timestamp"], errors="coerce", utc=True)
        if parsed.notna().all():
            ratings["timestamp"] = parsed.astype("int64") // 10**9
    name = name or path.name.split(".")[0]
    return Contributions.from_frames(name, ratings, None, None, rating_scale)
