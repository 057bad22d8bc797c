"""Checks at the boundary for every path and data file a user gives.

A path or a file is user input: it can be absurdly long, point at a folder, a pipe or a device,
be a compression bomb, or hold something other than ratings (even a secret, through a symlink).
These helpers refuse such input with a :class:`~datalever.errors.DataleverError` before any
loader touches it, bound what decompression may produce, and keep file contents out of error
messages (only short, sanitised previews such as column names that look like identifiers).

Decompressed sizes are capped at :func:`max_decompressed_bytes` (2 GiB by default, enough for
MovieLens-25M's 650 MB of ratings; set ``DATALEVER_MAX_DECOMPRESSED_BYTES`` to change it).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from datalever.errors import DataleverError

#: Environment variable that overrides the cap on decompressed bytes.
MAX_DECOMPRESSED_ENV = "DATALEVER_MAX_DECOMPRESSED_BYTES"
#: Default cap on the bytes one compressed file or archive may decompress to.
DEFAULT_MAX_DECOMPRESSED_BYTES = 2 << 30
#: An archive member this much larger than its compressed size is refused when it is also big
#: (MovieLens archives compress about 3-6:1; text of repeated zeros, a bomb, about 1000:1).
MAX_RATIO = 200
#: ... where "big" means more than this many bytes.
RATIO_CHECK_ABOVE = 64 << 20
#: Most members an archive may hold (MovieLens archives hold at most a dozen).
MAX_ARCHIVE_MEMBERS = 10_000
#: Longest path or dataset name accepted, in characters (Linux's PATH_MAX is 4096 bytes).
MAX_PATH_CHARS = 4096
#: Longest single path component, in bytes (NAME_MAX on common file systems).
MAX_NAME_BYTES = 255
#: Most bytes read to find a table's header row.
HEADER_BYTES = 1 << 20

_IDENTIFIER = re.compile(r"[A-Za-z_][\w .:\-]*")
_PREVIEW_COLUMNS = 10
_PREVIEW_CHARS = 40


# ----------------------------------------------------------------------------- what we show


def shown(text: object, limit: int = 80) -> str:
    """``text`` safe to print in a message: non-printables as ``?``, cut to ``limit`` chars."""
    s = str(text)
    cut = len(s) > limit
    s = "".join(c if c.isprintable() else "?" for c in s[:limit])
    return s + "…" if cut else s


def column_preview(names: list[object]) -> str:
    """The columns of a file as a message may show them: names that look like identifiers
    (at most 10, each cut to 40 characters); anything else only counted, never printed, since
    a file that is not a table would otherwise have its first line echoed."""
    if not names:
        return "none"
    good = [str(n).strip() for n in names if _IDENTIFIER.fullmatch(str(n).strip())]
    parts = [shown(n, _PREVIEW_CHARS) for n in good[:_PREVIEW_COLUMNS]]
    hidden = len(names) - len(parts)
    if hidden:
        what = "other" if parts else "column"
        parts.append(f"{hidden} {what}{'s' if hidden > 1 else ''} not shown")
    return ", ".join(parts)


def value_preview(value: object) -> str:
    """One value from a file as a message may show it: short printable text as itself, else
    only its kind and length."""
    text = str(value)
    if len(text) <= 16 and text.isprintable():
        return repr(value) if isinstance(value, str) else text
    return f"a {len(text)}-character value"


# ----------------------------------------------------------------------------- paths


def user_path(
    text: str | os.PathLike[str], what: str = "path", fix: str = "give the path of a file."
) -> Path:
    """``text`` as a Path, refused when no file system could hold it (too long, NUL bytes,
    empty), so the operating system's errors never surface as tracebacks and nothing hangs
    on it. ``fix`` is the advice given with a path that is too long or empty."""
    s = os.fspath(text)
    if not isinstance(s, str):
        raise DataleverError(f"The {what} must be text.", "give the path as a string.")
    if not s.strip():
        raise DataleverError(f"The {what} is empty.", fix)
    if len(s) > MAX_PATH_CHARS:
        raise DataleverError(
            f"The {what} is {len(s):,} characters long ({shown(s, 40)}); no file system "
            f"accepts paths longer than {MAX_PATH_CHARS}.",
            fix,
        )
    if "\x00" in s:
        raise DataleverError(
            f"The {what} {shown(s)} contains a NUL character.", "remove it from the path."
        )
    long_part = next((p for p in s.split(os.sep) if len(p.encode(errors="replace")) > 255), None)
    if long_part is not None:
        raise DataleverError(
            f"The {what} {shown(s)} has a component of {len(long_part):,} characters; file "
            f"names are at most {MAX_NAME_BYTES} bytes.",
            "check the path.",
        )
    try:
        return Path(s).expanduser()
    except RuntimeError:  # ~someone for an unknown user
        raise DataleverError(
            f"The {what} {shown(s)} starts with a home folder that does not exist.",
            "write the path in full.",
        ) from None


def file_kind(path: Path) -> str:
    """'file', 'folder', 'missing' or 'other' (a pipe, a device, a socket), following links;
    stat errors (permissions, link loops) are reported as clear errors."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except OSError as exc:
        raise DataleverError(
            f"Cannot look at {shown(path, 200)} ({exc.strerror or exc}).",
            "check the path and its permissions.",
        ) from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "other"


def regular_file(path: Path, what: str = "file") -> Path:
    """``path`` when it is a regular file; a clear error for a missing path, a folder or a
    pipe/device (reading /dev/zero or a FIFO would never end)."""
    kind = file_kind(path)
    if kind == "missing":
        raise DataleverError(f"The {what} {shown(path, 200)} does not exist.", "check the path.")
    if kind == "folder":
        raise DataleverError(
            f"The {what} {shown(path, 200)} is a folder, not a file.", "give a file's path."
        )
    if kind == "other":
        raise DataleverError(
            f"The {what} {shown(path, 200)} is not a regular file (a pipe, device or socket).",
            "give a regular file; copy the data to a file first.",
        )
    return path


# ----------------------------------------------------------------------------- decompression


def max_decompressed_bytes() -> int:
    """The cap on decompressed bytes: ``$DATALEVER_MAX_DECOMPRESSED_BYTES`` or 2 GiB."""
    raw = os.environ.get(MAX_DECOMPRESSED_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DECOMPRESSED_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise DataleverError(
            f"{MAX_DECOMPRESSED_ENV} is {shown(raw, 40)!r}, not a positive number of bytes.",
            f"set it to a byte count such as {DEFAULT_MAX_DECOMPRESSED_BYTES}, or unset it.",
        )
    return value


def _too_big(path: Path, cap: int) -> DataleverError:
    return DataleverError(
        f"{shown(path, 200)} decompresses to more than {cap:,} bytes, the limit for "
        "compressed data files (a damaged file or a compression bomb?).",
        f"decompress it yourself if it is genuine, or raise the limit with {MAX_DECOMPRESSED_ENV}.",
    )


class CappedReader(io.RawIOBase):
    """A binary stream that raises once more than ``cap`` bytes have been read from ``inner``,
    so a compression bomb stops at the cap instead of filling memory."""

    def __init__(self, inner: BinaryIO, cap: int, on_exceed: Callable[[], DataleverError]) -> None:
        self._inner = inner
        self._cap = cap
        self._on_exceed = on_exceed
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._inner.read(min(len(view), self._cap + 1 - self._done) or 1)
        self._done += len(data)
        if self._done > self._cap:
            raise self._on_exceed()
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def check_archive(zf: zipfile.ZipFile, path: Path, cap: int | None = None) -> list[zipfile.ZipInfo]:
    """The file members of a zip archive, refused before extraction when there are too many,
    when their declared sizes pass the cap, or when one is big and compressed beyond 200:1."""
    cap = max_decompressed_bytes() if cap is None else cap
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise DataleverError(
            f"{shown(path, 200)} holds {len(members):,} files; at most "
            f"{MAX_ARCHIVE_MEMBERS:,} are accepted.",
            "give the dataset's own archive.",
        )
    total = 0
    for m in members:
        total += m.file_size
        ratio = m.file_size / max(m.compress_size, 1)
        if total > cap or (m.file_size > RATIO_CHECK_ABOVE and ratio > MAX_RATIO):
            raise _too_big(path, cap)
    return members


def open_capped(path: Path, cap: int | None = None, header_only: bool = False) -> BinaryIO:
    """``path`` opened for binary reading, decompressed by its suffix (.gz, .bz2, .xz, .zip)
    and capped at ``cap`` decompressed bytes; plain files are read as they are, uncapped.

    ``header_only`` caps any file at 1 MiB, for reading a header line: a file without line
    breaks would otherwise be read whole to find the first one.
    """
    cap = max_decompressed_bytes() if cap is None else cap
    if header_only:
        cap = min(cap, HEADER_BYTES)

        def on_exceed() -> DataleverError:
            return DataleverError(
                f"The first line of {shown(path, 200)} is longer than {HEADER_BYTES:,} bytes, "
                "so it is not a table's header row.",
                "give a CSV/TSV file with a header row naming its columns.",
            )
    else:

        def on_exceed() -> DataleverError:
            return _too_big(path, cap)

    suffix = path.suffix.lower()
    raw = open(path, "rb")  # noqa: SIM115 - handed to the caller, closed with the wrapper
    try:
        if suffix == ".gz":
            inner: BinaryIO = gzip.GzipFile(fileobj=raw)
        elif suffix == ".bz2":
            inner = bz2.BZ2File(raw)
        elif suffix == ".xz":
            inner = lzma.LZMAFile(raw)  # noqa: SIM115 - closed with the wrapper
        elif suffix == ".zip":
            inner = _zip_member(raw, path, cap)
        elif suffix == ".zst":
            raise DataleverError(
                f"{shown(path, 200)} is compressed with zstd, which datalever does not read.",
                "decompress it, or recompress it with gzip (.gz), bzip2 (.bz2) or xz (.xz).",
            )
        elif header_only:
            inner = raw
        else:
            return raw
    except BaseException:
        raw.close()
        raise
    reader = CappedReader(inner, cap, on_exceed)
    return io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[return-value]


def _zip_member(raw: BinaryIO, path: Path, cap: int) -> BinaryIO:
    try:
        zf = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DataleverError(
            f"{shown(path, 200)} is not a valid zip archive.", "give a complete copy."
        ) from None
    members = check_archive(zf, path, cap)
    if len(members) != 1:
        raise DataleverError(
            f"{shown(path, 200)} holds {len(members)} files; a zipped table must hold exactly one.",
            "zip the table alone, or unzip it and give the table's path.",
        )
    try:
        return zf.open(members[0])  # type: ignore[return-value]
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        raise DataleverError(
            f"{shown(path, 200)} cannot be unpacked ({shown(exc, 120)}).",
            "give an unencrypted zip made with the usual (deflate) compression.",
        ) from None
