"""A catalogue of public datasets, fetched once into a local cache and verified by checksum.

Results are only comparable if everyone measures on the same bytes, so every download is checked
against the MD5 GroupLens publishes next to each archive (``ml-*.zip.md5``) before it is used.
Downloads go through pooch (streamed to a temporary file, kept only when the checksum matches);
archives are unpacked by our own guarded extraction (no path escapes the cache, size capped), and
nothing is installed in the cache until it has been validated. Without internet, MovieLens-100K
can still be had from the RecBole wheel on PyPI, which ships a copy of it as RecBole atomic
files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datalever.data.contributions import Contributions
from datalever.data.guard import (
    MAX_DECOMPRESSED_ENV,
    check_archive,
    file_kind,
    max_decompressed_bytes,
    shown,
    user_path,
)
from datalever.data.movielens import (
    SCALE_HALF_STARS,
    SCALE_WHOLE_STARS,
    Frames,
    detect_format,
    read_frames,
)
from datalever.errors import DataleverError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
TIMEOUT_S = 20
MARKER = ".datalever.json"
FRAMES_DIR = ".datalever-frames-v1"

#: The PyPI wheel that carries MovieLens-100K, and the SHA-256 of that wheel as pip fetched it.
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FOLDER = "recbole/dataset_example/ml-100k/"
RECBOLE_FILES = ("ml-100k.inter", "ml-100k.user", "ml-100k.item")


@dataclass(frozen=True)
class DatasetInfo:
    """One catalogue entry: where to get the archive and how to check it."""

    name: str
    url: str
    md5: str | None
    description: str
    formats: tuple[str, ...]
    rating_scale: tuple[float, float]
    sha256: str | None = None


def _entry(name: str, archive: str, md5: str | None, description: str, fmt: str) -> DatasetInfo:
    formats = (fmt, "recbole") if fmt == "movielens-100k" else (fmt,)
    scale = SCALE_WHOLE_STARS if fmt in ("movielens-100k", "movielens-1m") else SCALE_HALF_STARS
    return DatasetInfo(name, f"{GROUPLENS}/{archive}.zip", md5, description, formats, scale)


#: MD5s are GroupLens's published ``.zip.md5`` values. latest-small has none pinned: it is a
#: development dataset that GroupLens regenerates, so its archive changes over time.
CATALOGUE: dict[str, DatasetInfo] = {
    e.name: e
    for e in (
        _entry(
            "movielens-100k",
            "ml-100k",
            "0e33842e24a9c977be4e0107933c0723",
            "100,000 ratings (1-5) by 943 users on 1,682 movies, with user demographics (1998).",
            "movielens-100k",
        ),
        _entry(
            "movielens-1m",
            "ml-1m",
            "c4d9eecfca2ab87c1945afe126590906",
            "1,000,209 ratings (1-5) by 6,040 users on 3,706 movies, with demographics (2003).",
            "movielens-1m",
        ),
        _entry(
            "movielens-10m",
            "ml-10m",
            "ce571fd55effeba0271552578f2648bd",
            "10,000,054 ratings (0.5-5) by 69,878 users on 10,677 movies (2009).",
            "movielens-10m",
        ),
        _entry(
            "movielens-20m",
            "ml-20m",
            "cd245b17a1ae2cc31bb14903e1204af3",
            "20,000,263 ratings (0.5-5) by 138,493 users on 26,744 movies (2015).",
            "movielens-csv",
        ),
        _entry(
            "movielens-25m",
            "ml-25m",
            "6b51fb2759a8657d3bfcbfc42b592ada",
            "25,000,095 ratings (0.5-5) by 162,541 users on 59,047 movies (2019).",
            "movielens-csv",
        ),
        _entry(
            "movielens-latest-small",
            "ml-latest-small",
            None,
            "About 100,000 ratings (0.5-5) by 610 users; a development set that changes.",
            "movielens-csv",
        ),
    )
}

#: Other spellings people use for catalogue entries.
ALIASES = {
    **{info.url.rsplit("/", 1)[1].removesuffix(".zip"): n for n, info in CATALOGUE.items()},
    **{n.removeprefix("movielens-"): n for n in CATALOGUE},
}


def known_names() -> list[str]:
    return list(CATALOGUE)


def resolve_name(name: str) -> str | None:
    """The catalogue name for ``name`` or one of its aliases (ml-100k, 100k), else None."""
    if len(name) > 100:  # no catalogue name is this long
        return None
    key = name.strip().lower()
    return key if key in CATALOGUE else ALIASES.get(key)


def _info(name: str) -> DatasetInfo:
    key = resolve_name(name)
    if key is None:
        raise DataleverError(
            f"Unknown dataset {shown(name)!r}.",
            f"use one of {', '.join(CATALOGUE)}, or pass a path to a dataset folder or a "
            "CSV/Parquet file.",
        )
    return CATALOGUE[key]


def cache_dir() -> Path:
    """Where datasets live: ``$DATALEVER_CACHE``, else the platform's user cache folder."""
    env = os.environ.get("DATALEVER_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("datalever"))


def dataset_dir(name: str) -> Path:
    """The cache folder of a catalogue dataset (it may not exist yet)."""
    return cache_dir() / _info(name).name


def cached_source(name: str) -> str | None:
    """The source ("grouplens", "recbole", "local") a cached dataset came from, or None."""
    marker = dataset_dir(name) / MARKER
    try:
        return json.loads(marker.read_text())["source"]
    except (OSError, ValueError, KeyError):
        return None


def is_fetched(name: str) -> bool:
    return cached_source(name) is not None


# ----------------------------------------------------------------------------- download helpers


def _file_digest(path: Path, algorithm: str) -> str:
    """The ``algorithm`` (md5, sha256) digest of a file, as pooch computes it."""
    import pooch

    return pooch.file_hash(str(path), alg=algorithm)


def _known_hash(info: DatasetInfo) -> str | None:
    """The catalogue's checksum in pooch's ``alg:digest`` form (MD5 first: it is the one
    GroupLens publishes), or None for an entry with none pinned."""
    if info.md5:
        return f"md5:{info.md5.lower()}"
    return f"sha256:{info.sha256.lower()}" if info.sha256 else None


def _checksum_error(info: DatasetInfo, what: str, algorithm: str, actual: str | None):
    expected = info.md5 if algorithm == "md5" else info.sha256
    has = f"has {algorithm.upper()} {actual}, but" if actual else "does not match"
    return DataleverError(
        f"The {what} for {info.name} {has} the published checksum {'is ' if actual else ''}"
        f"{expected}; it is corrupt, incomplete or a different release.",
        f"download it again (datalever data fetch {info.name}), or get {info.url} "
        "by hand and pass it with --path.",
    )


def _verify(path: Path, info: DatasetInfo, what: str) -> None:
    """Raise when ``path`` does not hash to the catalogue's checksum."""
    for algorithm, expected in (("md5", info.md5), ("sha256", info.sha256)):
        if expected is None:
            continue
        actual = _file_digest(path, algorithm)
        if actual != expected.lower():
            raise _checksum_error(info, what, algorithm, actual)


def _downloader(progress: bool):
    """pooch's HTTP downloader: a progress bar (tqdm, when installed) and a timeout."""
    import importlib.util

    import pooch

    bar = progress and importlib.util.find_spec("tqdm") is not None
    return pooch.HTTPDownloader(
        progressbar=bar, timeout=TIMEOUT_S, headers={"User-Agent": "datalever"}
    )


class NetworkError(Exception):
    """A download that failed for want of a network, a server or a file on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _download(info: DatasetInfo, folder: Path, progress: bool) -> Path:
    """Download ``info.url`` into ``folder`` with pooch, which streams it to a temporary file
    and keeps it only when it matches the published checksum. A network failure raises
    :class:`NetworkError`; a checksum mismatch, a :class:`DataleverError`."""
    import logging

    import pooch
    import requests

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # our own line says what is downloaded; pooch's is noise
    if progress:
        print(f"downloading {info.url}", file=sys.stderr, flush=True)
    try:
        archive = pooch.retrieve(
            info.url,
            known_hash=_known_hash(info),
            fname=info.url.rsplit("/", 1)[1],
            path=folder,
            downloader=_downloader(progress),
        )
    except requests.exceptions.RequestException as exc:
        raise NetworkError(_reason(exc)) from None
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise _checksum_error(info, "download", "md5" if info.md5 else "sha256", None) from None
    finally:
        logger.setLevel(level)
    return Path(archive)


def _reason(exc: Exception) -> str:
    """A short reason for a failed request (no URL-encoded noise)."""
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {TIMEOUT_S} s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect"
    return shown(type(exc).__name__, 60)


def _install(staging: Path, info: DatasetInfo, source: str, detail: dict[str, str]) -> Path:
    """Check ``staging`` holds the expected format, mark it complete and move it into place."""
    try:
        fmt, _ = detect_format(staging)
    except DataleverError:
        raise DataleverError(
            f"The files given for {info.name} hold no MovieLens or RecBole dataset.",
            f"give the archive or folder of {info.name} ({info.url}).",
        ) from None
    if fmt not in info.formats:
        raise DataleverError(
            f"The files given for {info.name} look like {fmt}, not {' or '.join(info.formats)}.",
            f"give the archive or folder of {info.name} ({info.url}).",
        )
    try:
        # Parse and validate now, so a damaged copy is refused here rather than at every
        # load; the parsed frames are kept (moved with the folder) for fast loading.
        frames = _cached_frames(staging)
        frames.rating_scale = frames.rating_scale or info.rating_scale
        frames.to_contributions(info.name)
    except DataleverError as exc:
        given = detail.get("path") or detail.get("url") or source
        problem = exc.problem.replace(str(staging), shown(given, 200))
        raise DataleverError(
            f"The files given for {info.name} are not a usable dataset: {problem}",
            exc.fix or f"give the archive or folder of {info.name} ({info.url}).",
        ) from None
    marker = {"name": info.name, "source": source, "format": fmt, **detail}
    (staging / MARKER).write_text(json.dumps(marker, indent=2))
    target = cache_dir() / info.name
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _staging_dir(info: DatasetInfo) -> Path:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{info.name}-", suffix=".tmp", dir=root))


def _extract_zip(archive: Path, staging: Path) -> None:
    """Unpack ``archive`` into ``staging``, refusing archives whose declared sizes pass the
    decompression cap and stopping any member that inflates beyond what it declared."""
    cap = max_decompressed_bytes()
    try:
        with zipfile.ZipFile(archive) as zf:
            written = 0
            for member in check_archive(zf, archive, cap):
                target = Path(zf.extract(member, staging))  # extract() strips ../ and roots
                written += target.stat().st_size
                if written > cap:
                    raise DataleverError(
                        f"{shown(archive, 200)} decompresses to more than {cap:,} bytes.",
                        f"give the dataset's own archive, or raise {MAX_DECOMPRESSED_ENV}.",
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DataleverError(
            f"{shown(archive, 200)} is not a valid zip archive ({shown(exc, 120)}).",
            "download it again or give another copy.",
        ) from None
    except OSError as exc:
        raise DataleverError(
            f"{shown(archive, 200)} could not be unpacked into the cache ({shown(exc, 160)}).",
            "check the free space and permissions of the cache folder (DATALEVER_CACHE).",
        ) from None


def _from_zip(archive: Path, info: DatasetInfo, source: str, detail: dict[str, str]) -> Path:
    staging = _staging_dir(info)
    try:
        _extract_zip(archive, staging)
        return _install(staging, info, source, detail)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_grouplens(info: DatasetInfo, progress: bool) -> Path:
    """Download, verify and unpack the GroupLens archive; raises NetworkError if offline.

    The archive lives in a temporary folder of the cache until it is unpacked, so a failed or
    refused download leaves nothing behind."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    downloads = Path(tempfile.mkdtemp(prefix=f".{info.name}-", suffix=".download", dir=root))
    try:
        archive = _download(info, downloads, progress)
        _verify(archive, info, "download")  # every pinned checksum, not only pooch's one
        return _from_zip(archive, info, "grouplens", {"url": info.url, "md5": info.md5 or ""})
    finally:
        shutil.rmtree(downloads, ignore_errors=True)


def _fetch_recbole(info: DatasetInfo, progress: bool) -> Path:
    """MovieLens-100K from the RecBole wheel on PyPI, fetched by pip without its dependencies."""
    with tempfile.TemporaryDirectory(prefix="datalever-recbole-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            RECBOLE_REQUIREMENT,
            "-d",
            tmp,
        ]
        if progress:
            print(f"fetching {info.name} from the {RECBOLE_REQUIREMENT} wheel", file=sys.stderr)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            failed = done.returncode != 0
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] if failed else []
        except (OSError, subprocess.TimeoutExpired) as exc:
            failed, detail = True, [str(exc)]
        wheels = sorted(Path(tmp).glob("recbole-*.whl"))
        if failed or not wheels:
            raise DataleverError(
                f"Could not download {RECBOLE_REQUIREMENT} with pip "
                f"({' '.join(detail) or 'no wheel came back'}).",
                f"connect to the internet, or download {info.url} elsewhere and pass it with "
                f"`datalever data fetch {info.name} --path FILE`.",
            )
        wheel = wheels[0]
        actual = _file_digest(wheel, "sha256")
        if actual != RECBOLE_WHEEL_SHA256:
            raise DataleverError(
                f"The {RECBOLE_REQUIREMENT} wheel has SHA-256 {actual}, not the expected "
                f"{RECBOLE_WHEEL_SHA256}.",
                "check your package index; or download the GroupLens archive and pass --path.",
            )
        staging = _staging_dir(info)
        try:
            with zipfile.ZipFile(wheel) as zf:
                for file in RECBOLE_FILES:
                    (staging / file).write_bytes(zf.read(RECBOLE_FOLDER + file))
            detail_ = {"wheel": RECBOLE_REQUIREMENT, "wheel_sha256": RECBOLE_WHEEL_SHA256}
            return _install(staging, info, "recbole", detail_)
        except KeyError:
            raise DataleverError(
                f"The {RECBOLE_REQUIREMENT} wheel lacks {RECBOLE_FOLDER}.",
                "download the GroupLens archive and pass it with --path.",
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _from_local(path: Path, info: DatasetInfo) -> Path:
    """Put a user's copy (zip or folder) into the cache, verifying a zip's checksum."""
    path = user_path(path)
    kind = file_kind(path)
    if kind == "missing":
        raise DataleverError(
            f"The path {shown(path, 200)} does not exist.", "check the path you gave."
        )
    detail = {"path": str(path.resolve())}
    if kind == "folder":
        staging = _staging_dir(info)
        try:
            fmt, folder = detect_format(path)
            for item in folder.iterdir():
                if item.is_file() and item.name != MARKER:
                    try:
                        shutil.copy2(item, staging / item.name)
                    except OSError as exc:
                        raise DataleverError(
                            f"Could not copy {shown(item, 200)} into the cache "
                            f"({shown(exc, 160)}).",
                            "check the file's permissions and the cache's free space.",
                        ) from None
            return _install(staging, info, "local", detail)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if kind != "file" or not zipfile.is_zipfile(path):
        raise DataleverError(
            f"{shown(path, 200)} is neither a folder nor a zip archive.",
            f"give the {info.url.rsplit('/', 1)[1]} archive or the folder it unzips to.",
        )
    _verify(path, info, f"archive {path.name}")
    return _from_zip(path, info, "local", detail)


def fetch_dataset(
    name: str, *, source: str = "auto", path: Path | None = None, progress: bool = True
) -> Path:
    """Make a catalogue dataset available in the cache and return its folder.

    ``source``: "grouplens" downloads the official archive; "recbole" takes MovieLens-100K from
    the RecBole wheel on PyPI; "auto" uses the cache if present, else GroupLens, else (for
    MovieLens-100K, when GroupLens cannot be reached) RecBole. ``path`` installs a local copy
    (a zip, checked against the published checksum, or an unzipped folder) instead.
    """
    info = _info(name)
    if source not in ("auto", "grouplens", "recbole"):
        raise DataleverError(f"Unknown source {source!r}.", "use 'auto', 'grouplens' or 'recbole'.")
    if source == "recbole" and "recbole" not in info.formats:
        raise DataleverError(
            f"The RecBole source only provides movielens-100k, not {info.name}.",
            "use source 'grouplens' or 'auto'.",
        )
    if path is not None:
        return _from_local(Path(path), info)
    cached = cached_source(info.name)
    if cached is not None and (source == "auto" or cached == source):
        return dataset_dir(info.name)
    if source == "recbole":
        return _fetch_recbole(info, progress)
    try:
        return _fetch_grouplens(info, progress)
    except NetworkError as exc:
        reason = exc.reason
        if source == "auto" and "recbole" in info.formats:
            if progress:
                print(f"GroupLens unreachable ({reason}); trying PyPI", file=sys.stderr)
            return _fetch_recbole(info, progress)
        raise DataleverError(
            f"Could not download {info.name} from {info.url} ({reason}).",
            f"check your internet connection, or download the archive elsewhere and pass it "
            f"with `datalever data fetch {info.name} --path FILE`.",
        ) from None


# ----------------------------------------------------------------------------- loading


def _cached_frames(folder: Path) -> Frames:
    """The raw frames of a cached dataset, kept as Parquet after the first parse.

    Parsing the text files of the large releases takes far longer than reading Parquet; the
    cache is only written inside the datalever cache, whose files nobody edits.
    """
    store = folder / FRAMES_DIR
    meta_path = store / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        users = pd.read_parquet(store / "users.parquet") if meta["users"] else None
        items = pd.read_parquet(store / "items.parquet") if meta["items"] else None
        ratings = pd.read_parquet(store / "ratings.parquet")
        scale = tuple(meta["rating_scale"]) if meta["rating_scale"] else None
        source = str(folder / meta["source"]) if meta.get("source") else None
        return Frames(ratings, users, items, scale, meta["format"], source)
    except (OSError, ValueError, KeyError):
        pass
    frames = read_frames(folder)
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".frames-", dir=folder))
        frames.ratings.to_parquet(tmp / "ratings.parquet")
        for key in ("users", "items"):
            table = getattr(frames, key)
            if table is not None:
                table.to_parquet(tmp / f"{key}.parquet")
        meta = {
            "format": frames.format,
            "rating_scale": frames.rating_scale,
            "users": frames.users is not None,
            "items": frames.items is not None,
            "source": os.path.relpath(frames.source, folder) if frames.source else None,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(store, ignore_errors=True)
        tmp.rename(store)
    except (OSError, ValueError, ImportError):
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return frames


def load_dataset(name_or_path: str | Path, *, fetch: bool = True) -> Contributions:
    """Load a catalogue dataset by name, or a dataset folder or CSV/Parquet file by path.

    A catalogue dataset not yet in the cache is fetched when ``fetch`` is true. Names and
    paths no file system could hold (too long, NUL characters) are refused at once.
    """
    fix = "name a catalogue dataset (" + ", ".join(CATALOGUE) + "), or give a path."
    text = str(user_path(name_or_path, "dataset name or path", fix))
    key = resolve_name(text) if isinstance(name_or_path, str) else None
    if key is not None:
        if not is_fetched(key):
            if not fetch:
                raise DataleverError(
                    f"The dataset {key} is not in the cache ({cache_dir()}).",
                    f"run `datalever data fetch {key}`, or pass the path of a local copy.",
                )
            fetch_dataset(key)
        frames = _cached_frames(dataset_dir(key))
        # RecBole files do not state the scale; the catalogue knows it.
        frames.rating_scale = frames.rating_scale or CATALOGUE[key].rating_scale
        return frames.to_contributions(key)
    path = Path(text)
    kind = file_kind(path)
    if kind == "folder":
        from datalever.data.movielens import load_movielens

        return load_movielens(path)
    if kind in ("file", "other"):
        from datalever.data.tabular import load_table

        return load_table(path)
    looks_like_path = os.sep in text or "/" in text or Path(text).suffix != ""
    if looks_like_path:
        raise DataleverError(
            f"There is no file or folder at {shown(path, 200)}.",
            "check the path, or name a catalogue dataset: " + ", ".join(CATALOGUE) + ".",
        )
    raise DataleverError(
        f"Unknown dataset {shown(text)!r}.",
        f"use one of {', '.join(CATALOGUE)}, or pass a path to a dataset folder or a "
        "CSV/Parquet file.",
    )
