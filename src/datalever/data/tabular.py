"""Interactions from any CSV or Parquet table, given which columns hold user, item and rating.

Most datasets are not MovieLens: a table of (user, item, rating[, timestamp]) under any column
names is enough to measure data leverage, so this loader asks only for a column mapping. A table
with no rating column (none mapped, none of the usual names) is implicit feedback: each row is an
interaction (a click, a play, a purchase), loaded with the value 1.0 and marked ``implicit``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from datalever.data.contributions import Contributions
from datalever.data.guard import (
    _IDENTIFIER,
    MAX_DECOMPRESSED_ENV,
    column_preview,
    max_decompressed_bytes,
    open_capped,
    regular_file,
    shown,
    user_path,
)
from datalever.errors import DataleverError

#: Our column names; user and item are required, and without a rating the table is implicit
#: feedback.
FIELDS = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item")

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


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged table can raise: parser, decompression and Arrow errors."""
    import zipfile
    import zlib
    from lzma import LZMAError

    import pyarrow as pa

    return (
        OSError,
        ValueError,
        EOFError,
        TypeError,
        KeyError,
        IndexError,
        NotImplementedError,
        OverflowError,
        zlib.error,
        LZMAError,
        zipfile.BadZipFile,
        pd.errors.ParserError,
        pa.ArrowException,
    )


#: Exceptions turned into "could not be read" errors (bugs of our own are not among them).
READ_ERRORS = _read_errors()


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
    if not last and suffixes != [s.lower() for s in Path(path).suffixes]:
        raise DataleverError(
            f"{shown(path, 200)} is an archive or compressed file, but its name does not say "
            "what it holds (e.g. ratings.csv.gz or ratings.csv.zip).",
            "name it after the table inside, unzip it, or for a MovieLens archive run "
            "`datalever data fetch NAME --path FILE`.",
        )
    raise DataleverError(
        f"Cannot tell the format of {shown(path, 200)} from its name "
        f"(suffix {shown(last, 20) or 'none'!r}).",
        "give a .csv, .tsv, .txt (optionally compressed, e.g. .csv.gz) or .parquet file.",
    )


def _decode_error(path: Path, exc: UnicodeDecodeError) -> DataleverError:
    return DataleverError(
        f"{shown(path, 200)} is not UTF-8 text (byte {exc.start:,} of the text cannot be "
        "decoded); it may be binary or saved in another encoding.",
        "give a CSV/TSV file saved as UTF-8, or a Parquet file.",
    )


def _read_error(path: Path, fmt: str, exc: BaseException) -> DataleverError:
    return DataleverError(
        f"The file {shown(path, 200)} could not be read as {fmt} ({shown(exc, 160)}).",
        "check that the file is complete and of the format its name says.",
    )


def _sniff(head: bytes) -> str:
    """The separator of a .txt table: the one of comma, tab, semicolon, bar or space that
    splits its first lines evenly (a comma when none does, leaving one column)."""
    import csv

    lines = head.decode("utf-8", errors="ignore").splitlines()[:20]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",\t;| ").delimiter
    except csv.Error:
        return ","


def _file_columns(path: Path, fmt: str, sep: str | None) -> tuple[list[str], str | None]:
    """The header of the table, read without loading the data, and the separator (sniffed
    for .txt files)."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(path).names], None
        with open_capped(path, header_only=True) as handle:
            head = handle.read(1 << 16)
        if b"\x00" in head:
            raise DataleverError(
                f"{shown(path, 200)} holds NUL bytes, so it is binary data, not a text table.",
                "give a CSV/TSV text file or a Parquet file.",
            )
        sep = sep or _sniff(head)
        with open_capped(path, header_only=True) as handle:
            return [str(c) for c in pd.read_csv(handle, sep=sep, nrows=0)], sep
    except pd.errors.EmptyDataError:
        raise DataleverError(
            f"The file {shown(path, 200)} is empty.", "give a table with a header row and records."
        ) from None
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except READ_ERRORS as exc:
        raise _read_error(path, fmt, exc) from None


def _resolve(columns: dict[str, str] | None, found: list[str], path: Path) -> dict[str, str]:
    """Map our field names to the file's columns: the mapping first, then known aliases."""
    columns = dict(columns or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise DataleverError(
            "The column mapping must map field names to column names, both as text.",
            'write it as e.g. {user = "userId", item = "movieId", rating = "rating"}.',
        )
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise DataleverError(
            f"The column mapping names unknown field(s) {', '.join(map(shown, unknown))}.",
            f"map only {', '.join(FIELDS)} to the file's column names.",
        )
    twice = {c for c in columns.values() if list(columns.values()).count(c) > 1}
    if twice:
        fields = [f"{ours}" for ours, theirs in columns.items() if theirs in twice]
        raise DataleverError(
            f"The column mapping maps {' and '.join(fields)} to the same column "
            f"({', '.join(repr(shown(c, 40)) for c in sorted(twice))}).",
            "map each of user, item, rating and timestamp to a column of its own.",
        )
    bad = {ours: theirs for ours, theirs in columns.items() if theirs not in found}
    if bad:
        listing = ", ".join(f"{ours}={shown(theirs, 40)!r}" for ours, theirs in bad.items())
        raise DataleverError(
            f"The column mapping names column(s) that {shown(path.name)} lacks: {listing} "
            f"(columns found: {column_preview(found)}).",
            f"map user, item and rating to columns that exist, e.g. {_suggest(found)}.",
        )
    lower: dict[str, str] = {}
    for c in found:  # " userId " matches userId, the first of equal names wins
        lower.setdefault(c.strip().lower(), c)
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
    if missing and "rating" not in columns:
        missing.append("rating")  # a table this far from the format: say all it lacks
    if missing:
        raise DataleverError(
            f"{shown(path.name)} has no column for {', '.join(missing)} "
            f"({len(found)} column{'s' if len(found) != 1 else ''} found: "
            f"{column_preview(found)}).",
            "map our names to the file's columns in the spec's [data] table, e.g. "
            f"columns = {{{_suggest_toml(found)}}}.",
        )
    return columns


def _suggest_toml(found: list[str]) -> str:
    """The suggested mapping written as a TOML inline table body."""
    pairs = [p.split("=", 1) for p in _suggest(found).split(",")]
    return ", ".join(f'{k} = "{v}"' for k, v in pairs)


def _suggest(found: list[str]) -> str:
    """A mapping to show in error messages, built from the first columns of the file (when
    their names look like identifiers; file contents are never echoed)."""
    pairs = [f"{ours}={theirs}" for ours, theirs in zip(FIELDS, found, strict=False)]
    shows = all(_IDENTIFIER.fullmatch(t) and len(t) <= 40 for t in found[: len(pairs)])
    if len(pairs) < 3 or not shows or any("," in t or "=" in t for t in found[:4]):
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
    """Load interactions from a CSV/TSV (optionally .gz/.bz2/.xz/.zip) or Parquet file.

    ``columns`` maps our names (user, item, rating, timestamp) to the file's column names;
    fields left out are matched to common names (userId, movieId, user_id, ...). ``sep``
    overrides the separator the suffix implies. The rating scale defaults to the (min, max) of
    the ratings. Every problem with the file is a :class:`DataleverError`; compressed files
    stop at :func:`~datalever.data.guard.max_decompressed_bytes`. Duplicate (user, item)
    records keep the latest (see :meth:`Contributions.from_frames`).
    """
    path = regular_file(user_path(path, "data file", "give the path of a table."), "data file")
    fmt, sep, found = table_header(path, sep)
    mapping = _resolve(columns, found, path)
    usecols = list(mapping.values())
    df = read_table(path, fmt, sep, found, usecols)
    ratings = df[usecols].copy()
    ratings.columns = list(mapping)
    ratings = ratings[[f for f in FIELDS if f in mapping]]
    name = name or path.name.split(".")[0] or path.name
    implicit = "rating" not in mapping
    data = Contributions.from_frames(
        name,
        ratings,
        None,
        None,
        None if implicit else rating_scale,
        source=str(path),
        column_names=mapping,
        implicit=implicit,
    )
    if implicit:
        data.notes.append(
            f"{shown(path.name)} has no rating column: each of its {len(data):,} records is "
            "loaded as implicit feedback (an interaction, value 1). Ranking metrics apply; "
            "RMSE and learners that need rating values do not."
        )
    return data


def table_header(path: Path, sep: str | None = None) -> tuple[str, str | None, list[str]]:
    """A table's format, separator (from the suffix, or sniffed for .txt) and column names,
    read without loading the data."""
    fmt = table_format(path)
    if fmt == "csv" and sep is None:
        suffixes = [s.lower() for s in path.suffixes if s.lower() not in COMPRESSION_SUFFIXES]
        sep = CSV_SUFFIXES.get(suffixes[-1] if suffixes else ".csv")
    found, sep = _file_columns(path, fmt, sep)
    return fmt, sep, found


def read_table(
    path: Path, fmt: str, sep: str | None, found: list[str], usecols: list[str]
) -> pd.DataFrame:
    """The columns ``usecols`` of a table whose header :func:`table_header` read; every
    problem with the file is a :class:`DataleverError`."""
    try:
        if fmt == "parquet":
            return _read_parquet(path, usecols)
        with open_capped(path) as handle, warnings.catch_warnings():
            # All columns named, so a row with more fields than the header is an error
            # instead of being cut short or shifting the columns.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(handle, sep=sep, names=found, header=0, index_col=False)
        return df[usecols]
    except DataleverError:
        raise
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except pd.errors.ParserWarning:
        raise DataleverError(
            f"{shown(path, 200)} has rows with more fields than its header has columns "
            f"({len(found)}).",
            "quote fields that contain the separator, or fix the rows.",
        ) from None
    except MemoryError:
        raise DataleverError(
            f"{shown(path, 200)} does not fit in memory.", "load a smaller part of it."
        ) from None
    except READ_ERRORS as exc:
        raise _read_error(path, fmt, exc) from None


def _read_parquet(path: Path, usecols: list[str]) -> pd.DataFrame:
    """The columns ``usecols`` of a Parquet file, refused first when their size (from the
    file's metadata: the uncompressed pages, and at least 8 bytes a value, as run-length
    encoding can pack a billion equal values in a few bytes) passes the decompression cap."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    cap = max_decompressed_bytes()
    total = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            if any(name == u or name.startswith(u + ".") for u in usecols):
                total += max(chunk.total_uncompressed_size, 0)
    total = max(total, meta.num_rows * 8 * len(usecols))
    if total > cap:
        raise DataleverError(
            f"{shown(path, 200)} declares {total:,} bytes of data in the columns used, more "
            f"than the limit of {cap:,} for data files.",
            f"load fewer rows, or raise the limit with {MAX_DECOMPRESSED_ENV}.",
        )
    df = pd.read_parquet(path, columns=usecols)
    df.columns = [str(c) for c in df.columns]  # pandas keeps integer names (0, 1) in metadata
    return df
