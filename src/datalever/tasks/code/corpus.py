"""Code corpora: the source files of many contributors, tokenized once, as token files.

A record is one Python file; its contributor is whoever a collective would be made of:

- ``load_stdlib()``: the Python standard library this interpreter runs on (found through
  ``sysconfig``), where a contributor is a package (``email``, ``asyncio``, ``json``: every file
  under its folder) or a family of top-level modules (see :func:`module_family`). Test suites
  are left out: every folder named ``test`` or ``tests`` or ending in ``_test`` or ``_tests``
  (``test``, ``idlelib/idle_test``, ``lib2to3/tests``, ...), which would otherwise be most of
  the corpus; so are ``site-packages``, ``__pycache__``, folders and modules whose names are
  not identifiers (``lib-dynload``, the build's ``_sysconfigdata`` module) and anything but
  ``.py`` files. ``include_site_packages=True`` adds the installed distributions' ``.py`` files
  (tests left out the same way), one contributor per distribution, with its author and licence.
- ``load_folder(path)``: each subfolder is a repository and a contributor, or, with
  ``by="owner"``, folders are ``owner/repository`` and a contributor is an owner; every ``.py``
  file below, hidden folders and ``__pycache__`` excepted.
- ``load_table(path)``: a JSON-lines or Parquet table of ``contributor``, ``path`` and ``text``
  (The Stack's layout; other column names by a mapping).

Files are sorted by path. A file that does not tokenize (see ``tokens``), is larger than
``max_file_bytes`` (a folder's files are then not read at all), is not a regular file (a pipe
or a device named ``*.py``), cannot be read or has no tokens is left out, listed in ``skipped``
with the reason and counted in ``notes``; never dropped silently.

A corpus's ``identity`` is a SHA-256 over what determines its tokens: the token scheme, the
vocabulary's ``min_count``, the file-size cap, the Python version whose ``tokenize`` read it
(and, for the standard library, the full Python version) and every file's contributor, path
and content hash. The tokenized corpus is cached under the datalever cache folder
(``$DATALEVER_CACHE``, else the user cache folder) by identity, so loading it again costs
reading and hashing the files, not tokenizing them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import stat
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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
    value_preview,
)
from datalever.errors import DataleverError
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.tokens import (
    TokenScheme,
    UntokenizableFile,
    Vocabulary,
    decode_source,
    tokenize_source,
)

#: Files larger than this are left out (generated tables, vendored bundles); the standard
#: library's largest, ``pydoc_data/topics.py``, is about 0.75 MB.
MAX_FILE_BYTES = 1 << 20
#: Changes whenever what a corpus's identity covers, or the cache's layout, changes.
FORMAT = "datalever-code-corpus-v1"
#: Our names for a code table's columns.
TABLE_FIELDS = ("contributor", "path", "text")
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
_COMPRESSED = {".gz", ".bz2", ".xz"}
_SHOWN_SKIPPED = 5


@dataclass(frozen=True)
class SourceFile:
    """One source file before tokenizing: who wrote it, its path and its bytes (``None`` with
    a ``problem`` when it could not be read)."""

    contributor: str
    path: str
    data: bytes | None
    problem: str | None = None


@dataclass
class CodeCorpus:
    """Tokenized source files, each carrying its contributor's code.

    ``records`` has one row per file (``contributor``, ``path``, ``n_tokens``) in the order of
    ``files``; ``contributor_ids`` maps contributor codes to names; ``contributors`` holds
    their attributes (``files``, ``tokens``, and where known ``source``, ``author``,
    ``license``, ``repositories``), indexed by code.
    """

    name: str
    records: pd.DataFrame
    contributor_ids: np.ndarray
    contributors: pd.DataFrame
    files: TokenFiles
    vocabulary: Vocabulary
    scheme: TokenScheme
    identity: str
    #: (path, reason) of every file left out.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    task = "code"

    @property
    def n_contributors(self) -> int:
        return len(self.contributor_ids)

    @property
    def width(self) -> int:
        """The dimension learners' state grows with: the token codes (the vocabulary and the
        codes reserved for tokens levers bring)."""
        return self.files.vocab_size

    def encode(self, tokens: list[str], what: str = "text") -> np.ndarray:
        """Token codes for text a lever writes (``what``, for messages): the vocabulary's
        codes, and for tokens the corpus never had (a trigger comment), the reserved codes
        after the vocabulary, in order of first appearance. Models of every scenario keep one
        set of codes."""
        new: dict[str, int] = {}
        codes = []
        for token in tokens:
            if token in self.vocabulary:
                codes.append(self.vocabulary.code(token))
                continue
            if token not in new:
                if len(new) == RESERVED_CODES:
                    raise DataleverError(
                        f"The {what} {'bring' if ' and ' in what else 'brings'} more than "
                        f"{RESERVED_CODES} tokens that "
                        f"{shown(self.name)} never had.",
                        "use shorter text, or text made of the corpus's own tokens.",
                    )
                new[token] = len(self.vocabulary) + len(new)
            codes.append(new[token])
        return np.asarray(codes, dtype=np.int32)

    @property
    def n_tokens(self) -> int:
        return len(self.files.tokens)

    def __len__(self) -> int:
        return len(self.records)

    def training_set(self, index: np.ndarray | None = None) -> TokenFiles:
        """All files (or those at positions ``index``, or a boolean mask) as token files."""
        return self.files if index is None else self.files.subset(index)

    def checksum(self) -> str:
        """The identity's first 16 hex digits, as long as every dataset's checksum."""
        return self.identity[:16]


#: Token codes reserved after the vocabulary for tokens levers bring (a trigger comment, a
#: banner), so that every scenario's files share one set of codes and one end-of-file code.
RESERVED_CODES = 64


def contributor_files(corpus: CodeCorpus) -> list[np.ndarray]:
    """The file positions of each contributor, by contributor code, in file order."""
    codes = corpus.records["contributor"].to_numpy(np.int64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=corpus.n_contributors)
    return np.split(order, np.cumsum(counts)[:-1])


# ----------------------------------------------------------------------------- building


def build_corpus(
    name: str,
    sources: Iterable[SourceFile],
    *,
    scheme: TokenScheme | None = None,
    min_count: int = 1,
    max_file_bytes: int = MAX_FILE_BYTES,
    attributes: pd.DataFrame | None = None,
    origin: str = "",
    notes: list[str] | None = None,
    cache: bool | str | Path = True,
) -> CodeCorpus:
    """Tokenize ``sources`` into a corpus (the loaders below all end here).

    ``attributes`` holds extra contributor attributes indexed by contributor name; ``origin``
    is anything else the corpus's identity must cover (the Python version of a standard
    library); ``cache`` is True (the datalever cache folder), False, or a folder.
    """
    scheme = scheme or TokenScheme()
    _check_options(min_count, max_file_bytes)
    files = sorted(sources, key=lambda f: (f.path, f.contributor))
    if not files:
        raise DataleverError(f"{shown(name)} has no Python files.", "give a corpus of .py files.")
    _refuse_duplicates(name, files)
    identity = _identity(files, scheme, min_count, max_file_bytes, origin)
    folder = _cache_folder(cache)
    done = _read_cache(folder, identity, len(files)) if folder else None
    if done is None:
        done = _tokenize(files, scheme, min_count, max_file_bytes)
        if folder:
            _write_cache(folder, identity, done)
    tokens, offsets, kept, vocabulary, left_out = done
    if not kept:
        path, reason = files[left_out[0][0]].path, left_out[0][1]
        raise DataleverError(
            f"None of the {len(files):,} files of {shown(name)} could be tokenized "
            f"(the first, {shown(path)}: {shown(reason, 120)}).",
            "give Python 3 source files.",
        )

    names = np.array([files[i].contributor for i in kept], dtype=object)
    contributor_ids, codes = np.unique(names.astype(str), return_inverse=True)
    lengths = np.diff(offsets)
    token_files = TokenFiles(
        tokens, offsets, codes.astype(np.int32), len(vocabulary) + RESERVED_CODES
    )
    records = pd.DataFrame(
        {
            "contributor": codes.astype(np.int32),
            "path": pd.Series([files[i].path for i in kept], dtype=object),
            "n_tokens": lengths.astype(np.int64),
        }
    )
    contributors = pd.DataFrame(
        {
            "files": np.bincount(codes, minlength=len(contributor_ids)),
            "tokens": np.bincount(codes, weights=lengths, minlength=len(contributor_ids)).astype(
                np.int64
            ),
        }
    )
    if attributes is not None and len(attributes.columns):
        extra = attributes.reindex(contributor_ids.astype(object))
        for column in extra.columns:
            contributors[column] = extra[column].to_numpy()
    skipped = [(files[i].path, reason) for i, reason in left_out]
    all_notes = [*(notes or []), *_skip_notes(skipped)]
    lost = sorted({f.contributor for f in files} - set(contributor_ids))
    if lost:
        all_notes.append(
            f"{len(lost):,} contributor(s) had no file left and are not in the corpus: "
            f"{_listed(lost)}."
        )
    return CodeCorpus(
        name=name,
        records=records,
        contributor_ids=contributor_ids.astype(object),
        contributors=contributors,
        files=token_files,
        vocabulary=vocabulary,
        scheme=scheme,
        identity=identity,
        skipped=skipped,
        notes=all_notes,
    )


def _check_options(min_count: int, max_file_bytes: int) -> None:
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise DataleverError(
            f"min_count must be a whole number of at least 1, not {min_count!r}.",
            "give min_count = 1 to keep every token, or more to read rare ones as <unk>.",
        )
    if (
        isinstance(max_file_bytes, bool)
        or not isinstance(max_file_bytes, int)
        or max_file_bytes < 1
    ):
        raise DataleverError(
            f"max_file_bytes must be a whole number of bytes, not {max_file_bytes!r}.",
            f"give a size such as {MAX_FILE_BYTES} (1 MiB).",
        )


def _refuse_duplicates(name: str, files: list[SourceFile]) -> None:
    seen: set[tuple[str, str]] = set()
    for f in files:
        key = (f.contributor, f.path)
        if key in seen:
            raise DataleverError(
                f"{shown(name)} has the file {shown(f.path)} of {shown(f.contributor)} more "
                "than once.",
                "keep one row per contributor and path.",
            )
        seen.add(key)


def _identity(
    files: list[SourceFile], scheme: TokenScheme, min_count: int, max_file_bytes: int, origin: str
) -> str:
    h = hashlib.sha256()
    head = [FORMAT, str(scheme), min_count, max_file_bytes, sys.version_info[:2], origin]
    h.update(json.dumps(head).encode())
    for f in files:
        digest = hashlib.sha256(f.data).hexdigest() if f.data is not None else "unreadable"
        h.update(b"\n" + json.dumps([f.contributor, f.path, digest]).encode())
    return h.hexdigest()


_Tokenized = tuple[np.ndarray, np.ndarray, list[int], Vocabulary, list[tuple[int, str]]]


def _tokenize(
    files: list[SourceFile], scheme: TokenScheme, min_count: int, max_file_bytes: int
) -> _Tokenized:
    """Token codes of the files that tokenize (flat, with offsets), their positions, the
    vocabulary and (position, reason) of every file left out. One pass over the text."""
    counts: Counter[str] = Counter()
    sequences: list[list[str]] = []
    kept: list[int] = []
    left_out: list[tuple[int, str]] = []
    for i, f in enumerate(files):
        if f.data is None:
            left_out.append((i, f.problem or "unreadable"))
            continue
        if len(f.data) > max_file_bytes:
            left_out.append((i, f"larger than {max_file_bytes:,} bytes ({len(f.data):,})"))
            continue
        try:
            toks = tokenize_source(decode_source(f.data), scheme)
        except UntokenizableFile as exc:
            left_out.append((i, exc.reason))
            continue
        if not toks:
            left_out.append((i, "empty: no tokens"))
            continue
        counts.update(toks)
        sequences.append(toks)
        kept.append(i)
    vocabulary = Vocabulary.build(counts, min_count)
    tf = TokenFiles.from_sequences(
        [vocabulary.encode(s) for s in sequences], np.zeros(len(kept)), len(vocabulary)
    )
    return tf.tokens, tf.offsets, kept, vocabulary, left_out


def _skip_notes(skipped: list[tuple[str, str]]) -> list[str]:
    empty = [p for p, r in skipped if r.startswith("empty")]
    other = [(p, r) for p, r in skipped if not r.startswith("empty")]
    notes = []
    if other:
        shown_ = "; ".join(f"{shown(p)} ({shown(r, 120)})" for p, r in other[:_SHOWN_SKIPPED])
        more = f"; and {len(other) - _SHOWN_SKIPPED:,} more" if len(other) > _SHOWN_SKIPPED else ""
        notes.append(
            f"{len(other):,} file(s) could not be read or tokenized and were left out: "
            f"{shown_}{more}."
        )
    if empty:
        notes.append(f"{len(empty):,} empty file(s) (no tokens) were left out.")
    return notes


def _listed(names: list[str], limit: int = 10) -> str:
    text = ", ".join(shown(n, 60) for n in names[:limit])
    return text + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


# ----------------------------------------------------------------------------- cache


def _cache_folder(cache: bool | str | Path) -> Path | None:
    if cache is False:
        return None
    if cache is True:
        from datalever.data.registry import cache_dir

        return cache_dir() / "code-corpora"
    return Path(cache)


def _read_cache(folder: Path, identity: str, n_files: int) -> _Tokenized | None:
    """The tokenized corpus cached under ``identity``, or None (absent, or unreadable: then it
    is simply made again)."""
    path = folder / f"{identity}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            tokens = z["tokens"].astype(np.int32, copy=False)
            offsets = z["offsets"].astype(np.int64, copy=False)
            kept = [int(i) for i in z["kept"]]
            meta = json.loads(z["meta"].tobytes().decode())
            counts = z["counts"].astype(np.int64, copy=False)
        vocabulary = Vocabulary(tuple(meta["vocabulary"]), counts)
        left_out = [(int(i), str(r)) for i, r in meta["skipped"]]
        ok = (
            len(offsets) == len(kept) + 1
            and offsets[0] == 0
            and offsets[-1] == len(tokens)
            and len(kept) + len(left_out) == n_files
            and (not len(tokens) or 0 <= tokens.min() <= tokens.max() < len(vocabulary))
        )
        return (tokens, offsets, kept, vocabulary, left_out) if ok else None
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None


def _write_cache(folder: Path, identity: str, done: _Tokenized) -> None:
    """Cache a tokenized corpus; a cache that cannot be written only costs time later."""
    tokens, offsets, kept, vocabulary, left_out = done
    meta = json.dumps({"vocabulary": list(vocabulary.tokens), "skipped": left_out}).encode()
    tmp = folder / f"{identity}.{os.getpid()}.tmp.npz"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            tokens=tokens,
            offsets=offsets,
            kept=np.asarray(kept, dtype=np.int64),
            counts=vocabulary.counts,
            meta=np.frombuffer(meta, dtype=np.uint8),
        )
        os.replace(tmp, folder / f"{identity}.npz")
    except OSError:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- standard library


def is_test_folder(name: str) -> bool:
    """Whether a folder holds a test suite: ``test``, ``tests``, ``*_test``, ``*_tests``."""
    return name in ("test", "tests") or name.endswith(("_test", "_tests"))


def module_family(stem: str, names: set[str], shared: Counter[str] | None = None) -> str:
    """The contributor a top-level standard library module belongs to.

    Leading and trailing underscores are ignored (``__future__`` → ``future``); a private
    pure-Python twin joins the module it implements (``_pydecimal`` → ``decimal``, ``_pyio`` →
    ``io``, ``_py_abc`` → ``abc``); a name with underscores joins the top-level module or
    package named by its first part, or the other modules that share that first part
    (``_collections_abc`` → ``collections``, ``_threading_local`` → ``threading``,
    ``sre_parse`` → ``sre``); any other module is a family of its own (``py_compile``,
    ``_osx_support`` → ``osx_support``). ``names`` are the top-level module and package
    names; ``shared`` counts the first parts of the other modules with underscores
    (:func:`family_prefixes`).
    """
    twin = _twin(stem, names)
    if twin:
        return twin
    bare = stem.strip("_") or stem
    head = bare.split("_")[0]
    if "_" in bare and head and (head in names or (shared or Counter())[head] > 1):
        return head
    return bare


def family_prefixes(stems: Iterable[str], names: set[str]) -> Counter[str]:
    """How many modules with underscores (twins apart) share each first part of their name."""
    bare = [s.strip("_") for s in stems if not _twin(s, names)]
    return Counter(b.split("_")[0] for b in bare if "_" in b)


def _twin(stem: str, names: set[str]) -> str | None:
    """``decimal`` for ``_pydecimal``: the module a private pure-Python twin implements."""
    bare = stem.strip("_")
    if stem.startswith("_") and bare.startswith("py"):
        twin = bare[2:].lstrip("_")
        if twin in names:
            return twin
    return None


def stdlib_root() -> Path:
    """The folder of this interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_sources(root: Path | None = None) -> list[SourceFile]:
    """The ``.py`` files of the standard library at ``root`` (this interpreter's by default),
    with contributors by package or module family (see the module docstring)."""
    root = root or stdlib_root()
    packages, modules = [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and entry.name.isidentifier():
            if not is_test_folder(entry.name) and entry.name != "__pycache__":
                packages.append(entry.name)
        elif entry.is_file() and entry.name.endswith(".py") and entry.name[:-3].isidentifier():
            modules.append(entry.name[:-3])
    names = set(packages) | set(modules)
    shared = family_prefixes(modules, names)
    sources = [_read(root / f"{m}.py", module_family(m, names, shared), f"{m}.py") for m in modules]
    for package in packages:
        for path in _python_files(root / package, skip_tests=True):
            sources.append(_read(path, package, path.relative_to(root).as_posix()))
    return sources


def _python_files(folder: Path, skip_tests: bool) -> list[Path]:
    """The ``.py`` files below ``folder``, sorted; hidden folders, ``__pycache__`` and (when
    ``skip_tests``) test folders left out; links to folders not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d != "__pycache__"
            and not (skip_tests and is_test_folder(d))
        )
        found.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    return found


def _read(path: Path, contributor: str, relative: str, limit: int | None = None) -> SourceFile:
    """A file's bytes; ``None`` with the reason when it cannot be read, is not a regular
    file (a pipe or a device named ``*.py`` would be read forever) or has more than ``limit``
    bytes (then left out without being read whole)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return SourceFile(contributor, relative, None, "not a regular file")
        if limit is not None and info.st_size > limit:
            too_big = f"larger than {limit:,} bytes ({info.st_size:,})"
            return SourceFile(contributor, relative, None, too_big)
        with path.open("rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as exc:
        return SourceFile(contributor, relative, None, f"unreadable ({exc.strerror or exc})")
    if limit is not None and len(data) > limit:  # it grew since stat
        return SourceFile(contributor, relative, None, f"larger than {limit:,} bytes")
    return SourceFile(contributor, relative, data)


def site_package_sources() -> tuple[list[SourceFile], pd.DataFrame]:
    """The ``.py`` files of the installed distributions (one contributor each, by normalised
    name; tests and ``__pycache__`` left out) and their ``author`` and ``license``."""
    sources: list[SourceFile] = []
    rows: dict[str, dict[str, str | None]] = {}
    dists = sorted(importlib.metadata.distributions(), key=lambda d: _dist_name(d) or "")
    for dist in dists:
        name = _dist_name(dist)
        if not name or name in rows:  # the first of duplicates on sys.path, as import finds
            continue
        meta = dist.metadata
        rows[name] = {
            "author": _short(meta.get("Author") or meta.get("Author-email")),
            "license": _license(meta),
        }
        for f in sorted(dist.files or [], key=str):
            parts = PurePosixPath(str(f)).parts
            if not str(f).endswith(".py") or "__pycache__" in parts:
                continue
            if any(is_test_folder(p) for p in parts[:-1]):
                continue
            sources.append(
                _read(
                    Path(str(dist.locate_file(f))), name, f"site-packages/{PurePosixPath(str(f))}"
                )
            )
    attributes = pd.DataFrame.from_dict(rows, orient="index", columns=["author", "license"])
    return sources, attributes


def _dist_name(dist: importlib.metadata.Distribution) -> str | None:
    name = dist.metadata.get("Name")
    return re.sub(r"[-_.]+", "-", name).lower() if name else None


def _short(text: str | None, limit: int = 200) -> str | None:
    if not text:
        return None
    return shown(" ".join(str(text).split()), limit)


def _license(meta) -> str | None:
    """A distribution's licence: its SPDX expression, a short License field, or the last part
    of a ``License ::`` classifier."""
    if meta.get("License-Expression"):
        return _short(meta.get("License-Expression"))
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        return _short(text)
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return _short(classifiers[0].split("::")[-1])
    return _short(text.splitlines()[0]) if text else None


def installed_sources(include_site_packages: bool = False) -> tuple[list[SourceFile], pd.DataFrame]:
    """The standard library's source files (and optionally the installed distributions'), and
    their contributors' attributes."""
    sources = stdlib_sources()
    attributes = pd.DataFrame(
        {"source": "stdlib"}, index=pd.Index(sorted({s.contributor for s in sources}))
    )
    if include_site_packages:
        extra, dists = site_package_sources()
        # A distribution named like a standard library package stays a contributor of its own.
        taken = set(attributes.index)
        renamed = {n: (f"{n} (site-packages)" if n in taken else n) for n in dists.index}
        extra = [SourceFile(renamed[s.contributor], s.path, s.data, s.problem) for s in extra]
        dists = dists.rename(index=renamed).assign(source="site-packages")
        attributes = pd.concat([attributes, dists])
        sources += extra
    return sources, attributes


def load_stdlib(
    scheme: TokenScheme | None = None,
    *,
    include_site_packages: bool = False,
    min_count: int = 1,
    max_file_bytes: int = MAX_FILE_BYTES,
    cache: bool | str | Path = True,
) -> CodeCorpus:
    """The standard library of the running Python as a code corpus (optionally with the
    installed distributions); see the module docstring for who the contributors are."""
    version = platform.python_version()
    sources, attributes = installed_sources(include_site_packages)
    name = f"python-stdlib-{version}" + ("+site-packages" if include_site_packages else "")
    notes = [f"The standard library of Python {version} at {stdlib_root()}, tests left out."]
    return build_corpus(
        name,
        sources,
        scheme=scheme,
        min_count=min_count,
        max_file_bytes=max_file_bytes,
        attributes=attributes,
        origin=f"python {version}",
        notes=notes,
        cache=cache,
    )


# ----------------------------------------------------------------------------- folders


def folder_sources(
    path: str | Path, by: str = "repository", max_file_bytes: int = MAX_FILE_BYTES
) -> tuple[list[SourceFile], list[str], list[tuple[str, Path]]]:
    """The ``.py`` files of a folder of repositories with their contributors, what listing
    them found worth saying, and the (contributor, repository folder) pairs."""
    root = user_path(path, "code folder", "give the path of a folder of repositories.")
    if not root.is_dir():
        raise DataleverError(
            f"The code folder {shown(root, 200)} is not a folder.",
            "give a folder whose subfolders are repositories.",
        )
    notes: list[str] = []
    loose = _python_files_here(root)
    repositories = []  # (contributor, folder)
    for first in _subfolders(root):
        if by == "repository":
            repositories.append((first.name, first))
            continue
        loose += _python_files_here(first)
        repositories += [(first.name, second) for second in _subfolders(first)]
    if loose:
        notes.append(
            f"{len(loose):,} .py file(s) outside any repository folder were left out "
            f"(such as {shown(loose[0].relative_to(root).as_posix())})."
        )
    cap, total = max_decompressed_bytes(), 0
    sources = []
    for contributor, folder in repositories:
        for file in _python_files(folder, skip_tests=False):
            source = _read(file, contributor, file.relative_to(root).as_posix(), max_file_bytes)
            total += len(source.data or b"")
            if total > cap:
                raise DataleverError(
                    f"The .py files of {shown(root, 200)} add up to more than {cap:,} bytes, the "
                    "limit for data.",
                    f"load a smaller folder, or raise the limit with {MAX_DECOMPRESSED_ENV}.",
                )
            sources.append(source)
    if not sources:
        layout = "owner/repository/" if by == "owner" else "repository/"
        raise DataleverError(
            f"The code folder {shown(root, 200)} has no .py files in {layout}... subfolders.",
            "give a folder whose subfolders are repositories"
            + (" inside owner folders." if by == "owner" else "."),
        )
    return sources, notes, repositories


def load_folder(
    path: str | Path,
    by: str = "repository",
    *,
    scheme: TokenScheme | None = None,
    min_count: int = 1,
    max_file_bytes: int = MAX_FILE_BYTES,
    cache: bool | str | Path = True,
    name: str | None = None,
) -> CodeCorpus:
    """A folder of repositories as a code corpus: each subfolder is a repository and a
    contributor (``by="repository"``), or subfolders are owners holding repositories
    (``owner/repository``) and a contributor is an owner (``by="owner"``)."""
    if by not in ("repository", "owner"):
        raise DataleverError(
            f"A code folder's contributors are by repository or by owner, not {shown(by, 40)!r}.",
            'give by = "repository" (each subfolder) or "owner" (owner/repository subfolders).',
        )
    _check_options(min_count, max_file_bytes)  # before any file is read with its cap
    sources, notes, repositories = folder_sources(path, by, max_file_bytes)
    root = user_path(path, "code folder", "give the path of a folder of repositories.")
    attributes = None
    if by == "owner":
        owners = Counter(c for c, _ in repositories)
        attributes = pd.DataFrame({"repositories": pd.Series(owners, dtype=np.int64)})
    return build_corpus(
        name or shown(root.resolve().name or root, 200),
        sources,
        scheme=scheme,
        min_count=min_count,
        max_file_bytes=max_file_bytes,
        attributes=attributes,
        notes=notes,
        cache=cache,
    )


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataleverError(
            f"Cannot list the folder {shown(folder, 200)} ({exc.strerror or exc}).",
            "check its permissions.",
        ) from None
    return [
        Path(e.path)
        for e in entries
        if e.is_dir()  # a linked repository is followed; links below it are not
        and not e.name.startswith(".")
        and e.name != "__pycache__"
    ]


def _python_files_here(folder: Path) -> list[Path]:
    try:
        return sorted(
            Path(e.path) for e in os.scandir(folder) if e.is_file() and e.name.endswith(".py")
        )
    except OSError:
        return []


# ----------------------------------------------------------------------------- tables


def table_sources(path: str | Path, columns: dict[str, str] | None = None) -> list[SourceFile]:
    """The rows of a code table as source files (see :func:`load_table`)."""
    file = regular_file(user_path(path, "code table", "give the path of a table."), "code table")
    mapping = _mapping(columns)
    wanted = [mapping[f] for f in TABLE_FIELDS]
    fmt = _table_format(file)
    if fmt == "parquet":
        from datalever.data.tabular import read_table, table_header

        _, _, found = table_header(file)
        _require_columns(file, found, mapping)
        df = read_table(file, "parquet", None, found, list(dict.fromkeys(wanted)))
        rows = list(zip(*(df[c].tolist() for c in wanted), strict=True))
    else:
        rows = _json_rows(file, mapping)
    if not rows:
        raise DataleverError(
            f"The code table {shown(file, 200)} has no rows.",
            "give a table with one row per source file: contributor, path and text.",
        )
    return [
        SourceFile(_contributor(c, file, i), _path(p, file, i), _text(t, file, i))
        for i, (c, p, t) in enumerate(rows, start=1)
    ]


def load_table(
    path: str | Path,
    columns: dict[str, str] | None = None,
    *,
    scheme: TokenScheme | None = None,
    min_count: int = 1,
    max_file_bytes: int = MAX_FILE_BYTES,
    cache: bool | str | Path = True,
    name: str | None = None,
) -> CodeCorpus:
    """A JSON-lines (``.jsonl``, ``.ndjson``, ``.json``, optionally ``.gz``/``.bz2``/``.xz``)
    or Parquet table of source files as a code corpus. ``columns`` maps our names
    (``contributor``, ``path``, ``text``) to the table's, such as The Stack's
    ``{"contributor": "max_stars_repo_name", "path": "max_stars_repo_path",
    "text": "content"}``; unmapped names are taken as they are."""
    file = regular_file(user_path(path, "code table", "give the path of a table."), "code table")
    sources = table_sources(file, columns)
    base = file.name.split(".")[0] or file.name
    return build_corpus(
        name or shown(base, 200),
        sources,
        scheme=scheme,
        min_count=min_count,
        max_file_bytes=max_file_bytes,
        cache=cache,
    )


def _mapping(columns: dict[str, str] | None) -> dict[str, str]:
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(TABLE_FIELDS))
    if unknown:
        raise DataleverError(
            f"A code table has no field {', '.join(repr(shown(u, 40)) for u in unknown)}.",
            "map contributor, path and text to the table's column names.",
        )
    for key, value in columns.items():
        if not isinstance(value, str) or not value:
            raise DataleverError(
                f"The column mapped to {key} must be a column name, not {value_preview(value)}.",
                f"give {key} = the name of the table's column.",
            )
    mapping = {f: columns.get(f, f) for f in TABLE_FIELDS}
    # One column read as two fields (the source text as its path, say) is always a slip.
    for i, first in enumerate(TABLE_FIELDS):
        for second in TABLE_FIELDS[i + 1 :]:
            if mapping[first] == mapping[second]:
                raise DataleverError(
                    f"A code table's {first} and {second} are both read from the column "
                    f"{shown(mapping[first], 40)!r}.",
                    "map contributor, path and text to three different columns.",
                )
    return mapping


def is_json_lines(name: str | Path) -> bool:
    """Whether ``name`` is that of a JSON-lines file (optionally compressed): a table only
    the code family reads."""
    suffixes = [x.lower() for x in Path(str(name)).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in JSON_SUFFIXES


def _table_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES and path.suffix.lower() not in _COMPRESSED:
        return "parquet"
    if last in JSON_SUFFIXES:
        return "jsonl"
    raise DataleverError(
        f"Cannot tell the format of the code table {shown(path, 200)} from its name.",
        "give a JSON-lines file (.jsonl, optionally .gz, .bz2 or .xz) with one object per "
        "line, or a Parquet file (.parquet).",
    )


def _require_columns(path: Path, found: list[str], mapping: dict[str, str]) -> None:
    missing = [f"{mapping[f]}" for f in TABLE_FIELDS if mapping[f] not in found]
    if missing:
        raise DataleverError(
            f"The code table {shown(path, 200)} lacks the column(s) "
            f"{', '.join(shown(m, 40) for m in missing)} (columns found: {column_preview(found)}).",
            "give columns contributor, path and text, or map them to the table's names.",
        )


def _json_rows(path: Path, mapping: dict[str, str]) -> list[tuple[object, object, object]]:
    """(contributor, path, text) of each line of a JSON-lines file; blank lines skipped."""
    wanted = [mapping[f] for f in TABLE_FIELDS]
    rows = []
    try:
        with open_capped(path) as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
                    raise DataleverError(
                        f"Line {number:,} of {shown(path, 200)} is not valid JSON (UTF-8).",
                        "give one JSON object per line: contributor, path and text.",
                    ) from None
                except RecursionError:  # arrays or objects nested thousands deep
                    raise DataleverError(
                        f"Line {number:,} of {shown(path, 200)} nests JSON too deeply to read.",
                        "give one flat JSON object per line: contributor, path and text.",
                    ) from None
                if not isinstance(obj, dict):
                    raise DataleverError(
                        f"Line {number:,} of {shown(path, 200)} is JSON but not an object.",
                        'give one JSON object per line, like {"contributor": ..., "path": ..., '
                        '"text": ...}.',
                    )
                if any(c not in obj for c in wanted):
                    _require_columns(path, list(obj), mapping)
                rows.append(tuple(obj[c] for c in wanted))
    except DataleverError:
        raise
    except (OSError, EOFError, ValueError) as exc:
        raise DataleverError(
            f"The code table {shown(path, 200)} could not be read ({shown(exc, 160)}).",
            "check that the file is complete and of the format its name says.",
        ) from None
    return rows


def _bad(path: Path, row: int, field: str, value: object, want: str) -> DataleverError:
    return DataleverError(
        f"Row {row:,} of {shown(path, 200)} has {value_preview(value)} as its {field}, not {want}.",
        f"give every row a {field} ({want}).",
    )


def _contributor(value: object, path: Path, row: int) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    raise _bad(path, row, "contributor", value, "a text or a whole number")


def _path(value: object, path: Path, row: int) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(path, row, "path", value, "a non-empty text")


def _text(value: object, path: Path, row: int) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogatepass")
    if isinstance(value, bytes):
        return value
    raise _bad(path, row, "text", value, "the file's source text")


# ----------------------------------------------------------------------------- any source


def load_corpus(source: str | Path, **options) -> CodeCorpus:
    """``"stdlib"``, a folder of repositories or a code table, by what ``source`` is;
    ``options`` go to the loader."""
    if str(source).strip().lower() in ("stdlib", "python-stdlib"):
        return load_stdlib(**options)
    path = user_path(source, "code corpus", 'give "stdlib", a folder or a table.')
    if path.is_dir():
        return load_folder(path, **options)
    return load_table(path, **options)
