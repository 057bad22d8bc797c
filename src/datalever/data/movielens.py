"""Readers for every MovieLens release format and for RecBole atomic files.

Each release lays its files out differently (tab, ``|``, ``::`` or comma separated; latin-1 or
UTF-8; occupations as names or codes; genres as flags or ``|`` lists). The readers here turn all
of them into one shape, so the rest of datalever sees contributor attributes ``gender`` ('M'/'F'),
``age`` (int) and ``occupation`` (str), and item metadata ``title`` and ``genres`` (a ``|``-joined
string of genre names), whichever release they came from.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datalever.data.contributions import Contributions
from datalever.data.guard import column_preview, shown, value_preview
from datalever.errors import DataleverError

#: The 19 genre flags of MovieLens-100K ``u.item``, in file order.
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

#: MovieLens-1M ``users.dat`` occupation codes, as documented in the ml-1m README.
OCCUPATIONS_1M = {
    0: "other",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

#: Rating scales: half stars arrived with the 10M release.
SCALE_WHOLE_STARS = (1.0, 5.0)
SCALE_HALF_STARS = (0.5, 5.0)

#: Genre label GroupLens uses for items without genres; we store an empty string instead.
NO_GENRES = "(no genres listed)"


@dataclass
class Frames:
    """The raw frames of one dataset, before coding: what ``Contributions.from_frames`` takes."""

    ratings: pd.DataFrame
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    rating_scale: tuple[float, float] | None
    format: str
    #: The ratings file, named in error messages.
    source: str | None = None

    def to_contributions(self, name: str) -> Contributions:
        return Contributions.from_frames(
            name, self.ratings, self.users, self.items, self.rating_scale, source=self.source
        )


# ----------------------------------------------------------------------------- reading helpers


def _read(path: Path, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` that turns every parse failure into a DataleverError naming the file."""
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise DataleverError(
            f"The file {shown(path, 200)} does not exist.",
            "check the path, or fetch the dataset again.",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataleverError(
            f"The file {shown(path, 200)} is empty.",
            "replace it with a complete copy of the dataset.",
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataleverError(
            f"The file {shown(path, 200)} could not be read as the expected format "
            f"({shown(exc, 160)}).",
            "check that it is an unmodified file from the dataset's archive.",
        ) from None


def _read_double_colon_ratings(path: Path) -> pd.DataFrame:
    """Read a ``::``-separated ratings file with the fast C parser.

    pandas only parses multi-character separators with its slow Python engine; splitting on a
    single ``:`` leaves empty columns between the fields, which ``usecols`` drops.
    """
    df = _read(path, sep=":", header=None, usecols=[0, 2, 4, 6])
    df.columns = ["user", "item", "rating", "timestamp"]
    for col in ("user", "item"):
        df[col] = _as_int(df[col], path, col)
    return df


def _read_double_colon(path: Path, names: list[str], encoding: str | None) -> pd.DataFrame:
    """Read a small ``::``-separated metadata file (titles may contain single colons).

    With no ``encoding`` given, UTF-8 is used when the file decodes as UTF-8, else latin-1.
    """
    if encoding is None:
        encoding = "latin-1"
        if path.is_file():
            try:
                path.read_bytes().decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError:
                pass
    return _read(
        path,
        sep="::",
        engine="python",
        header=None,
        names=names,
        encoding=encoding,
        quoting=csv.QUOTE_NONE,
        dtype=str,
        keep_default_na=False,
    )


def _as_int(values: pd.Series, path: Path, column: str) -> pd.Series:
    """Integer ids/ages, so attribute tables and ratings join on equal values."""
    out = pd.to_numeric(values, errors="coerce")
    bad = out.isna() & values.notna()
    if bad.any():
        raise DataleverError(
            f"The {column} column of {shown(path, 200)} holds {int(bad.sum()):,} non-integer "
            f"value(s) (first: {value_preview(values[bad].iloc[0])}).",
            "check that the file is an unmodified copy from the dataset's archive.",
        )
    if out.isna().any():
        return out.astype("Int64")
    if (out != out.round()).any():
        raise DataleverError(
            f"The {column} column of {shown(path, 200)} holds non-integer value(s).",
            "check that the file is an unmodified copy from the dataset's archive.",
        )
    return out.astype("int64")


def _genres(values: pd.Series, sep: str) -> pd.Series:
    """Genre lists as ``|``-joined strings, with "no genres" stored as an empty string."""
    out = values.fillna("").astype(str).str.strip()
    out = out.where(out != NO_GENRES, "")
    if sep != "|":
        out = out.str.split().str.join("|")
    return out


# ----------------------------------------------------------------------------- the releases


def read_100k(folder: Path) -> Frames:
    """MovieLens-100K: ``u.data`` (tab), ``u.user`` and ``u.item`` (``|``, latin-1)."""
    ratings = _read(
        folder / "u.data", sep="\t", header=None, names=["user", "item", "rating", "timestamp"]
    )
    users = None
    if (folder / "u.user").is_file():
        raw = _read(
            folder / "u.user",
            sep="|",
            header=None,
            names=["user", "age", "gender", "occupation", "zip_code"],
            dtype=str,
            keep_default_na=False,
        )
        users = pd.DataFrame(
            {
                "gender": raw["gender"].to_numpy(),
                "age": _as_int(raw["age"], folder / "u.user", "age").to_numpy(),
                "occupation": raw["occupation"].to_numpy(),
                "zip_code": raw["zip_code"].to_numpy(),
            },
            index=pd.Index(_as_int(raw["user"], folder / "u.user", "user"), name="user"),
        )
    items = None
    if (folder / "u.item").is_file():
        names = ["item", "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K]
        raw = _read(
            folder / "u.item",
            sep="|",
            header=None,
            names=names,
            encoding="latin-1",
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
            dtype=str,
        )
        flags = raw[list(GENRES_100K)].apply(pd.to_numeric, errors="coerce").fillna(0).astype(bool)
        genres = flags.apply(lambda row: "|".join(g for g in GENRES_100K if row[g]), axis=1)
        items = pd.DataFrame(
            {
                "title": raw["title"].to_numpy(),
                "genres": genres.to_numpy() if len(raw) else [],
                "release_date": raw["release_date"].to_numpy(),
            },
            index=pd.Index(_as_int(raw["item"], folder / "u.item", "item"), name="item"),
        )
    source = str(folder / "u.data")
    return Frames(ratings, users, items, SCALE_WHOLE_STARS, "movielens-100k", source)


def _read_movies_dat(path: Path, encoding: str | None) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    raw = _read_double_colon(path, ["item", "title", "genres"], encoding)
    return pd.DataFrame(
        {"title": raw["title"].to_numpy(), "genres": _genres(raw["genres"], "|").to_numpy()},
        index=pd.Index(_as_int(raw["item"], path, "item"), name="item"),
    )


def read_1m(folder: Path) -> Frames:
    """MovieLens-1M: ``ratings.dat``, ``users.dat``, ``movies.dat`` (``::``, latin-1)."""
    ratings = _read_double_colon_ratings(folder / "ratings.dat")
    path = folder / "users.dat"
    raw = _read_double_colon(path, ["user", "gender", "age", "occupation", "zip_code"], "latin-1")
    codes = _as_int(raw["occupation"], path, "occupation")
    unknown = sorted(set(codes.dropna()) - set(OCCUPATIONS_1M))
    if unknown:
        raise DataleverError(
            f"{path} has occupation code(s) {unknown} outside the documented range 0-20.",
            "check that the file is an unmodified copy of MovieLens-1M users.dat.",
        )
    users = pd.DataFrame(
        {
            "gender": raw["gender"].to_numpy(),
            # 1M gives age as the lower bound of a bracket (1, 18, 25, 35, 45, 50, 56).
            "age": _as_int(raw["age"], path, "age").to_numpy(),
            "occupation": codes.map(OCCUPATIONS_1M).to_numpy(),
            "zip_code": raw["zip_code"].to_numpy(),
        },
        index=pd.Index(_as_int(raw["user"], path, "user"), name="user"),
    )
    items = _read_movies_dat(folder / "movies.dat", "latin-1")
    source = str(folder / "ratings.dat")
    return Frames(ratings, users, items, SCALE_WHOLE_STARS, "movielens-1m", source)


def read_10m(folder: Path) -> Frames:
    """MovieLens-10M: ``ratings.dat`` and ``movies.dat`` (``::``); it ships no user attributes."""
    ratings = _read_double_colon_ratings(folder / "ratings.dat")
    items = _read_movies_dat(folder / "movies.dat", None)
    source = str(folder / "ratings.dat")
    return Frames(ratings, None, items, SCALE_HALF_STARS, "movielens-10m", source)


def read_csv_release(folder: Path) -> Frames:
    """MovieLens-20M/25M/latest(-small): ``ratings.csv`` and ``movies.csv`` with headers."""
    path = folder / "ratings.csv"
    ratings = _read(path)
    expected = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}
    missing = [c for c in ("userId", "movieId", "rating") if c not in ratings.columns]
    if missing:
        raise DataleverError(
            f"{shown(path, 200)} lacks the column(s) {', '.join(missing)} "
            f"(columns found: {column_preview(list(ratings.columns))}).",
            "use an unmodified MovieLens ratings.csv, or load the file as a table with a column "
            "mapping (datalever.data.tabular.load_table).",
        )
    ratings = ratings.rename(columns=expected)
    ratings = ratings[[c for c in expected.values() if c in ratings]]
    items = None
    path = folder / "movies.csv"
    if path.is_file():
        raw = _read(path, dtype=str, keep_default_na=False)
        if {"movieId", "title", "genres"} <= set(raw.columns):
            items = pd.DataFrame(
                {
                    "title": raw["title"].to_numpy(),
                    "genres": _genres(raw["genres"], "|").to_numpy(),
                },
                index=pd.Index(_as_int(raw["movieId"], path, "movieId"), name="item"),
            )
    source = str(folder / "ratings.csv")
    return Frames(ratings, None, items, SCALE_HALF_STARS, "movielens-csv", source)


# ----------------------------------------------------------------------------- RecBole atomic

_RECBOLE_RENAME = {
    "user_id": "user",
    "item_id": "item",
    "movie_title": "title",
    "class": "genres",
    "genre": "genres",
}


def _read_atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """One RecBole atomic file: columns are ``name:type``; returns the frame and each type."""
    raw = _read(path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
    types: dict[str, str] = {}
    names = []
    for col in raw.columns:
        name, _, kind = str(col).partition(":")
        name = _RECBOLE_RENAME.get(name, name)
        names.append(name)
        types[name] = kind or "token"
    raw.columns = names
    raw = raw.replace("", pd.NA)
    return raw, types


def _harmonise_ids(*columns: pd.Series | pd.Index) -> bool:
    """Whether every id in all ``columns`` is an integer, so they can all become int."""
    for col in columns:
        values = pd.Series(col).dropna().astype(str)
        if not values.str.fullmatch(r"-?\d+").all():
            return False
    return True


def load_recbole_frames(directory: Path, name: str | None = None) -> Frames:
    """The frames of a RecBole atomic dataset (``NAME.inter`` with optional ``.user``/``.item``).

    RecBole ids are string tokens; when every id is an integer (as in RecBole's MovieLens
    copies) they become ints in ratings and attribute tables alike, so the contributor ids match
    those of the GroupLens files; otherwise they stay strings everywhere.
    """
    directory = Path(directory)
    inters = sorted(p for p in directory.glob("*.inter") if p.is_file())
    if not inters:
        raise DataleverError(
            f"No RecBole interaction file (*.inter) in {directory}.",
            "point to the folder that holds NAME.inter (and optionally NAME.user, NAME.item).",
        )
    if len(inters) > 1:
        chosen = [p for p in inters if p.stem == name]
        if not chosen:
            raise DataleverError(
                f"{directory} holds several RecBole datasets: {', '.join(p.stem for p in inters)}.",
                "pass the name of the one to load, or move it to a folder of its own.",
            )
        inters = chosen
    inter_path = inters[0]
    stem = inter_path.stem
    ratings, types = _read_atomic(inter_path)
    for col in ("rating", "timestamp"):
        if col in ratings and types.get(col, "").startswith("float"):
            parsed = pd.to_numeric(ratings[col], errors="coerce")
            # Leave unparseable ratings as text, so the validation names the bad value.
            if col == "timestamp" or not (parsed.isna() & ratings[col].notna()).any():
                ratings[col] = parsed

    users = items = None
    user_path, item_path = directory / f"{stem}.user", directory / f"{stem}.item"
    if user_path.is_file():
        users, _ = _read_atomic(user_path)
        if "user" not in users:
            raise DataleverError(
                f"{shown(user_path, 200)} has no user_id column "
                f"(columns: {column_preview(list(users.columns))}).",
                "give the user file a user_id:token column.",
            )
        if "age" in users:
            users["age"] = _as_int(users["age"], user_path, "age")
    if item_path.is_file():
        items, item_types = _read_atomic(item_path)
        if "item" not in items:
            raise DataleverError(
                f"{shown(item_path, 200)} has no item_id column "
                f"(columns: {column_preview(list(items.columns))}).",
                "give the item file an item_id:token column.",
            )
        if "genres" in items:
            sep = " " if item_types.get("genres", "").endswith("seq") else "|"
            items["genres"] = _genres(items["genres"], sep)

    tables = {"user": users, "item": items}
    for key, table in tables.items():
        if key not in ratings:
            continue
        as_int = _harmonise_ids(ratings[key], *([table[key]] if table is not None else []))
        if as_int:
            ratings[key] = _as_int(ratings[key], inter_path, key)
        if table is not None:
            if as_int:
                table[key] = _as_int(table[key], inter_path.with_suffix(f".{key}"), key)
            tables[key] = table.set_index(key)
    users, items = tables["user"], tables["item"]
    keep = [c for c in ("user", "item", "rating", "timestamp") if c in ratings]
    ratings = ratings[keep + [c for c in ratings.columns if c not in keep]]
    return Frames(ratings, users, items, None, "recbole", str(inter_path))


def load_recbole_atomic(directory: Path, name: str | None = None) -> Contributions:
    """Load a RecBole atomic dataset folder as :class:`Contributions`.

    The rating scale is taken from the data (min, max), since atomic files do not state it.
    """
    directory = Path(directory)
    frames = load_recbole_frames(directory, name)
    return frames.to_contributions(name or directory.name)


# ----------------------------------------------------------------------------- detection

_READERS: dict[str, Callable[[Path], Frames]] = {
    "movielens-100k": read_100k,
    "movielens-1m": read_1m,
    "movielens-10m": read_10m,
    "movielens-csv": read_csv_release,
    "recbole": load_recbole_frames,
}


def _format_of(folder: Path) -> str | None:
    if (folder / "u.data").is_file():
        return "movielens-100k"
    if (folder / "ratings.dat").is_file():
        return "movielens-1m" if (folder / "users.dat").is_file() else "movielens-10m"
    if (folder / "ratings.csv").is_file():
        return "movielens-csv"
    if any(p.is_file() for p in folder.glob("*.inter")):
        return "recbole"
    return None


def detect_format(directory: Path) -> tuple[str, Path]:
    """The format of a dataset folder and the folder that holds its files.

    Looks in ``directory`` and then one level down, as unzipped archives nest their files
    (``ml-100k/u.data``). Formats: movielens-100k, movielens-1m, movielens-10m, movielens-csv
    (20M/25M/latest), recbole.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataleverError(
            f"{directory} is not a folder.", "pass the folder that holds the dataset's files."
        )
    fmt = _format_of(directory)
    if fmt:
        return fmt, directory
    found = []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        if sub.name.startswith((".", "__")):
            continue
        sub_fmt = _format_of(sub)
        if sub_fmt:
            found.append((sub_fmt, sub))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataleverError(
            f"{directory} holds several datasets: {', '.join(str(p.name) for _, p in found)}.",
            "pass the folder of the one you mean.",
        )
    present = sorted(shown(p.name, 40) for p in directory.iterdir())
    more = f" and {len(present) - 12} more" if len(present) > 12 else ""
    listing = ", ".join(present[:12]) + more
    raise DataleverError(
        f"No MovieLens or RecBole files found in {shown(directory, 200)} "
        f"(it holds: {listing or 'nothing'}).",
        "point to a folder with u.data (100K), ratings.dat (1M/10M), ratings.csv "
        "(20M/25M/latest) or NAME.inter (RecBole), or to an archive's unzipped folder.",
    )


def read_frames(directory: Path) -> Frames:
    """The raw frames of whatever MovieLens or RecBole dataset ``directory`` holds."""
    fmt, folder = detect_format(Path(directory))
    return _READERS[fmt](folder)


def load_movielens(directory: Path, name: str | None = None) -> Contributions:
    """Load any MovieLens release (100K, 1M, 10M, 20M, 25M, latest) or a RecBole atomic folder.

    The format is detected from the files present, also one folder down. ``name`` defaults to
    the folder's name.
    """
    directory = Path(directory)
    return read_frames(directory).to_contributions(name or directory.name)
