"""Contributions: records (ratings) with contributor ids, contributor attributes and item metadata.

Contributors and items are coded as dense integers ``0..n-1`` once, at load time, so every later
stage (collectives, deltas, learners, metrics) works on plain numpy arrays.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datalever.data.guard import column_preview, shown, value_preview
from datalever.errors import DataleverError

logger = logging.getLogger("datalever.data")

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
    #: The user and item counts the dataset coded, when records added by a lever brought codes
    #: beyond them (fake profiles, a new item); ``None``: every code is the dataset's.
    coded: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.users)

    @property
    def coded_shape(self) -> tuple[int, int]:
        """The dataset's own ``(n_users, n_items)``: codes from these on are new."""
        return self.coded if self.coded is not None else (self.n_users, self.n_items)

    def subset(self, index: np.ndarray) -> TrainingSet:
        """The records at ``index`` (positions or a boolean mask)."""
        return TrainingSet(
            self.users[index],
            self.items[index],
            self.ratings[index],
            self.n_users,
            self.n_items,
            self.rating_scale,
            self.coded,
        )

    def digest_parts(self) -> tuple[np.ndarray | str, ...]:
        return (self.users, self.items, self.ratings, f"{self.n_users}|{self.n_items}")

    def concat(self, other: TrainingSet) -> TrainingSet:
        """These records followed by ``other``'s. ``other`` may bring new users and items
        (fake profiles, a new song): codes from this set's ``n_users`` / ``n_items`` on, which
        it counts in its own larger ``n_users`` / ``n_items``; the result counts the larger of
        each, so every model fitted on it knows the original codes and the new ones, and
        remembers which codes were the dataset's (``coded``)."""
        n_users, n_items = max(self.n_users, other.n_users), max(self.n_items, other.n_items)
        grown = (n_users, n_items) != (self.n_users, self.n_items)
        return TrainingSet(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            np.concatenate([self.ratings, other.ratings]),
            n_users,
            n_items,
            self.rating_scale,
            self.coded_shape if grown or self.coded is not None else None,
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
    #: What loading did that the user should know of (e.g. duplicate records dropped); the
    #: command line prints these lines.
    notes: list[str] = field(default_factory=list)
    #: Implicit feedback: the source had no ratings, only interactions (each ``rating`` is
    #: 1.0). Ranking metrics and learners that rank interactions apply; nothing that needs
    #: rating values does (see :func:`datalever.tasks.recsys.check_implicit`).
    implicit: bool = False
    #: The checksum, worked out once (hashing the data again costs a pass over it).
    _checksum: str | None = field(default=None, init=False, repr=False, compare=False)

    task = "recommendation"

    @property
    def n_contributors(self) -> int:
        return len(self.contributor_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def width(self) -> int:
        """The dimension beside the records that learners' state grows with: items."""
        return self.n_items

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
        if self._checksum is not None:
            return self._checksum
        h = hashlib.sha256()
        for col in RECORD_COLUMNS:
            h.update(np.ascontiguousarray(self.records[col].to_numpy()).tobytes())
        h.update(np.asarray(self.contributor_ids).astype(str).astype("U").tobytes())
        self._checksum = h.hexdigest()[:16]
        return self._checksum

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
        *,
        source: str | None = None,
        column_names: dict[str, str] | None = None,
        implicit: bool = False,
    ) -> Contributions:
        """Build contributions from raw frames, validating them.

        ``ratings`` needs columns ``user``, ``item``, ``rating`` (``timestamp`` optional);
        without ``rating`` and with ``implicit=True`` the records are implicit feedback, each an
        interaction of value 1.0;
        ``users`` is indexed by user id, ``items`` by item id. Ids must be integers or text;
        ratings finite numbers of magnitude at most :data:`MAX_RATING`; timestamps numbers or
        dates. ``source`` (the file) and ``column_names`` (our field -> the file's column)
        only make error messages name what the user wrote.

        Duplicate (user, item) records keep the latest by timestamp (the last in file order
        without timestamps, or among equal ones); how many were dropped is added to ``notes``
        and logged.
        """
        where = Where(name, source, column_names or {})
        if implicit:
            if "rating" in ratings.columns:
                raise ValueError("implicit feedback has no rating column")
            ratings = ratings.assign(rating=1.0)
            rating_scale = (1.0, 1.0)
        missing = [c for c in ("user", "item", "rating") if c not in ratings.columns]
        if missing:
            raise DataleverError(
                f"The {shown(where.data)} ratings lack the column(s) {', '.join(missing)} "
                f"(columns found: {column_preview(list(ratings.columns))}).",
                "name the user, item and rating columns (for CSV/Parquet files, pass a column "
                "mapping such as user=userId,item=movieId,rating=rating).",
            )
        if len(ratings) == 0:
            raise DataleverError(
                f"{where.file[0].upper()}{where.file[1:]} has no records.",
                "check the file or path you gave; a table needs rows below its header.",
            )
        rating = _ratings(ratings["rating"], where)
        user = _ids(ratings["user"], where, "user")
        item = _ids(ratings["item"], where, "item")
        timestamp = _timestamps(ratings["timestamp"], where) if "timestamp" in ratings else None
        user_codes, user_ids = pd.factorize(user, sort=True)
        item_codes, item_ids = pd.factorize(item, sort=True)
        records = pd.DataFrame(
            {
                "contributor": user_codes.astype(np.int32),
                "item": item_codes.astype(np.int32),
                "rating": rating,
            }
        )
        if timestamp is not None:
            records["timestamp"] = timestamp
        if rating_scale is not None:
            _check_scale(rating, rating_scale, where)
        records, notes = _drop_duplicates(records, len(item_ids), where)
        for table, what in ((users, "user"), (items, "item")):
            if table is not None and table.index.has_duplicates:
                repeated = table.index[table.index.duplicated()]
                raise DataleverError(
                    f"The {what} attributes loaded with {where.file} list {len(repeated):,} "
                    f"{what} id(s) more than once (first: {value_preview(repeated[0])}).",
                    f"keep one line per {what} in the dataset's {what} file.",
                )
        contributors = (
            users.reindex(user_ids) if users is not None else pd.DataFrame(index=user_ids)
        ).reset_index(drop=True)
        item_meta = (
            items.reindex(item_ids) if items is not None else pd.DataFrame(index=item_ids)
        ).reset_index(drop=True)
        kept = records["rating"].to_numpy()
        scale = rating_scale or (float(kept.min()), float(kept.max()))
        return cls(
            name=name,
            records=records,
            contributor_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
            contributors=contributors,
            items=item_meta,
            rating_scale=scale,
            notes=notes,
            implicit=implicit,
        )


# ----------------------------------------------------------------------------- validation

#: Largest rating magnitude accepted: beyond it squared errors lose all precision, and no
#: rating scale (stars, scores, play counts) comes near it.
MAX_RATING = 1e9
#: Timestamps must fit in 64-bit integers (seconds, or even nanoseconds, since 1970).
MAX_TIMESTAMP = float(2**63 - 1024)


@dataclass(frozen=True)
class Where:
    """Where records came from, for messages: the dataset, its file and its column names."""

    data: str
    source: str | None
    columns: dict[str, str]

    def column(self, field: str) -> str:
        """'The rating column of FILE', with the file's own column name when it differs."""
        theirs = self.columns.get(field)
        named = f" ({shown(theirs, 40)!r})" if theirs and theirs != field else ""
        return f"The {field} column{named} of {self.file}"

    @property
    def file(self) -> str:
        return shown(self.source, 200) if self.source else f"the {shown(self.data)} dataset"


def _rows(mask: np.ndarray) -> str:
    """'3 rows (first: data row 7)', counting data rows from 1 (a header is not counted)."""
    count = int(mask.sum())
    first = int(np.flatnonzero(mask)[0]) + 1
    return f"{count:,} row{'s' if count != 1 else ''} (first: data row {first:,})"


def _ratings(values: pd.Series, where: Where) -> np.ndarray:
    """The ratings as finite float64, refusing booleans, text, missing, infinite and absurd."""
    column = where.column("rating")
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "boolean" or pd.api.types.is_bool_dtype(values.dtype):
        raise DataleverError(
            f"{column} holds true/false values, not ratings.",
            "map rating to a column of numbers (stars, scores or counts).",
        )
    if kind in ("bytes", "mixed") and not pd.api.types.is_numeric_dtype(values.dtype):
        raise DataleverError(
            f"{column} holds values that are not numbers ({kind}).",
            "map rating to a column of numbers.",
        )
    try:
        numeric = pd.to_numeric(values, errors="coerce")
    except OverflowError:  # integers beyond what a float holds
        numeric = values.map(_as_float)
    if pd.api.types.is_object_dtype(values.dtype) and kind in ("mixed-integer", "mixed"):
        is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(bool)
        numeric = numeric.mask(is_bool)
    if pd.api.types.is_object_dtype(numeric.dtype):  # integers beyond 64 bits stay objects
        numeric = numeric.map(_as_float)
    rating = numeric.to_numpy(np.float64, na_value=np.nan)
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataleverError(
            f"{column} is empty in {_rows(missing)}.",
            "give every record a rating, or drop those rows.",
        )
    text = np.isnan(rating)
    if text.any():
        first = values[text].iloc[0]
        raise DataleverError(
            f"{column} holds non-numeric values in {_rows(text)}; the first "
            f"is {value_preview(first)}.",
            "make every rating a number, or drop those rows.",
        )
    absurd = ~(np.abs(rating) <= MAX_RATING)
    if absurd.any():
        raise DataleverError(
            f"{column} holds infinite values or values beyond ±{MAX_RATING:g} in {_rows(absurd)}.",
            "check the file; ratings must be finite numbers of a sensible size.",
        )
    return rating


def _check_scale(rating: np.ndarray, scale: tuple[float, float], where: Where) -> None:
    """A stated rating scale must be a finite range that holds every rating."""
    lo, hi = (float(v) for v in scale)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise DataleverError(
            f"The rating scale {scale} is not a range of finite numbers from low to high.",
            "give the scale as (lowest, highest), e.g. (1, 5).",
        )
    outside = (rating < lo) | (rating > hi)
    if outside.any():
        raise DataleverError(
            f"{where.column('rating')} holds ratings outside the scale {lo:g}–{hi:g} in "
            f"{_rows(outside)}.",
            "check the file, or state the scale its ratings use.",
        )


def _as_float(value: object) -> float:
    """One value as a float: huge integers become infinite (and are refused as such)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return float("inf")
    except (TypeError, ValueError):
        return float("nan")


def _ids(values: pd.Series, where: Where, field: str) -> pd.Series:
    """User or item ids as integers or text; anything else (lists, structs, bytes, booleans,
    missing) is refused, and integers too large for 64 bits become text."""
    column = where.column(field)
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataleverError(
            f"{column} is empty in {_rows(missing)}.",
            f"drop rows without a {field} id.",
        )
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "integer" and pd.api.types.is_object_dtype(values.dtype):
        return values.astype(str)  # beyond 64 bits: keep the digits as text
    if kind == "integer" or kind == "string":
        return values
    if kind == "floating":
        whole = np.isfinite(values.to_numpy(np.float64)) & (values == values.round()).to_numpy()
        if whole.all() and (values.abs() < 2**53).all():
            return values.astype("int64")
    if kind == "mixed-integer":  # text and integers: compare them all as text
        plain = values.map(lambda v: isinstance(v, (str, int)) and not isinstance(v, bool))
        if plain.all():
            return values.astype(str)
    what = {
        "floating": "numbers with fractions or non-finite numbers",
        "boolean": "true/false values",
        "bytes": "raw bytes",
    }.get(kind, "lists, records or other values that are neither integers nor text")
    raise DataleverError(
        f"{column} holds {what}; ids must be integers or text.",
        f"map {field} to a column of integer or text ids.",
    )


def _timestamps(values: pd.Series, where: Where) -> np.ndarray:
    """Timestamps as numbers (dates and date text become seconds since 1970); refused when
    missing, not numbers or dates, or outside 64-bit integers."""
    column = where.column("timestamp")
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataleverError(
            f"{column} is empty in {_rows(missing)}.",
            "give every record a timestamp, or leave the timestamp column out.",
        )
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataleverError(
            f"{column} holds true/false values, not times.",
            "map timestamp to a column of numbers or dates, or leave it out.",
        )
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _seconds(values)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy()
    else:
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("string", "integer", "floating", "mixed-integer-float", "datetime", "date"):
            raise DataleverError(
                f"{column} holds values that are neither numbers nor dates.",
                "map timestamp to a column of numbers or dates, or leave it out.",
            )
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            numbers = numeric.to_numpy()
        else:
            try:
                parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            except (ValueError, TypeError, OverflowError):
                parsed = pd.Series(pd.NaT, index=values.index)
            bad = (numeric.isna() & parsed.isna()).to_numpy()
            if bad.any():
                raise DataleverError(
                    f"{column} holds values that are neither numbers nor dates in {_rows(bad)}.",
                    "write times as numbers (seconds since 1970) or dates, or leave them out.",
                )
            if numeric.notna().any():
                raise DataleverError(
                    f"{column} mixes numbers and dates (first date: data row "
                    f"{int(np.flatnonzero(numeric.isna().to_numpy())[0]) + 1:,}).",
                    "write all times one way: seconds since 1970, or dates.",
                )
            return _seconds(parsed)
    as_float = numbers.astype(np.float64)
    absurd = ~(np.abs(as_float) <= MAX_TIMESTAMP)
    if absurd.any():
        raise DataleverError(
            f"{column} holds infinite or impossibly large times in {_rows(absurd)}.",
            "write times as seconds since 1970, or leave the timestamp column out.",
        )
    return numbers


def _seconds(dates: pd.Series) -> np.ndarray:
    """Dates as whole seconds since 1970, whatever the resolution pandas chose."""
    if dates.dt.tz is None:
        dates = dates.dt.tz_localize("UTC")
    epoch = pd.Timestamp(0, tz="UTC")
    return ((dates - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def _drop_duplicates(
    records: pd.DataFrame, n_items: int, where: Where
) -> tuple[pd.DataFrame, list[str]]:
    """Keep one record per (contributor, item): the latest by timestamp, else the last in file
    order. Returns the records (in file order) and a note saying what was dropped.

    A sort of the pair keys finds out whether there are any duplicates (MovieLens has none);
    only then is the slower ordering by time done.
    """
    key = records["contributor"].to_numpy(np.int64) * max(n_items, 1)
    key += records["item"].to_numpy(np.int64)
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return records, []
    del ordered
    position = np.arange(len(key))
    if "timestamp" in records:
        order = np.lexsort((position, records["timestamp"].to_numpy(), key))
        rule = "the latest of each by timestamp (the last in file order among equal times)"
    else:
        order = np.lexsort((position, key))
        rule = "the last of each in file order"
    sorted_key = key[order]
    last = np.ones(len(key), bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    keep = np.zeros(len(key), bool)
    keep[order] = last
    n = int((~keep).sum())
    note = (
        f"{where.file} has {n:,} duplicate (user, item) record{'s' if n != 1 else ''}: kept "
        f"{rule} and dropped {n:,}."
    )
    note = note[0].upper() + note[1:]
    logger.warning(note)
    return records.loc[keep].reset_index(drop=True), [note]
