"""The consent filter: a dataset (or a list of works) as a registry allows it for a purpose,
with a manifest of what was dropped and why.

The manifest is what makes the filtered copy trustworthy later: the registry snapshot it was
decided against (so it can be re-filtered after later opt-outs, or audited as of its day), and
the SHA-256 of the input and of the output. Nothing is overwritten: the output folder must not
hold a filtered copy already, and the manifest is written last, so a folder with a manifest is
a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from datalever.data.guard import regular_file
from datalever.errors import DataleverError
from datalever.registry.contributors import contributor_work
from datalever.registry.registry import Decision
from datalever.registry.works import parse_work

MANIFEST = "manifest.json"
#: Largest list of works read (a million URLs is about 100 MB).
MAX_LIST_BYTES = 256 << 20


class RemoteRegistry:
    """A registry's HTTP API as a source of decisions, through the fail-closed client."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        from datalever.registry.client import RegistryClient

        self.shown = url
        self._client = RegistryClient(url, token, timeout=timeout)

    def decide(
        self, dataset: str, works: Sequence[str], purpose: str, as_of: str | None = None
    ) -> list:
        return self._client.check(dataset, list(works), purpose, as_of=as_of)

    def close(self) -> None:
        self._client.close()


class Decides(Protocol):
    """Where decisions come from: a local :class:`Registry` or the HTTP client."""

    shown: str

    def decide(
        self, dataset: str, works: Sequence[str], purpose: str, as_of: str | None = None
    ) -> list[Decision]: ...


def require_registry(location: str | None) -> None:
    """Refuse a registry file that is not there. Opening one creates it: reading consent
    from it would leave an empty registry behind (at a mistyped path, or inside the spec's
    folder) and answer for nobody."""
    from datalever.registry.registry import default_registry_url

    text = default_registry_url() if location is None else location
    if not text.strip():
        raise DataleverError(
            "The registry location is blank.", "give a SQLite file path or a postgresql:// URL."
        )
    if "://" in text:
        if not text.lower().startswith("sqlite"):
            return  # a server: the Registry says if it cannot be reached
        import sqlalchemy as sa

        try:
            text = sa.engine.make_url(text).database or ""
        except (sa.exc.ArgumentError, ValueError):
            return  # the Registry explains a malformed URL
        if not text or text == ":memory:":
            return  # the Registry refuses a database in memory
    path = Path(text).expanduser()
    try:
        there = path.is_file() or path.is_dir()  # the Registry refuses a folder itself
        empty = path.is_file() and path.stat().st_size == 0  # SQLite would make it one
    except (OSError, ValueError):
        there = empty = False
    if not there or empty:
        raise DataleverError(
            f"There is no registry at {str(path)[:300]!r}"
            + (" (an empty file)." if empty else "."),
            "give the path of an existing registry file, or a postgresql:// URL "
            "(`datalever registry account` creates a new registry).",
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_folder(folder: Path) -> Path:
    """``folder``, created if needed; refused if it already holds a filtered copy."""
    folder = Path(folder).expanduser()
    try:
        done = (folder / MANIFEST).exists()
    except OSError:  # a name too long, say: creating the folder below says why
        done = False
    if done:
        raise DataleverError(
            f"{folder} already holds a filtered copy (its {MANIFEST} exists).",
            "choose another --out folder, or move the old copy away first.",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise DataleverError(
            f"Cannot create the output folder {str(folder)[:300]!r} "
            f"({getattr(exc, 'strerror', None) or exc}).",
            "choose a folder you can write to with --out.",
        ) from None
    return folder


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write the manifest last and atomically: a folder with one holds a complete copy."""
    path = folder / MANIFEST
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(partial, path)
    return path


def _registry_section(
    source: Decides, dataset: str, purpose: str, as_of: str | None, decisions: list[Decision]
) -> dict:
    snapshots = {d.snapshot for d in decisions if d.snapshot is not None}
    return {
        "registry": source.shown,
        "dataset": dataset,
        "purpose": purpose,
        "as_of": as_of,
        "snapshot": max(snapshots) if snapshots else None,
        # Works a remote registry gave no usable answer for, reserved by the client.
        "failed_closed": sum(d.snapshot is None for d in decisions),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def filter_dataset(
    spec,
    data,
    task,
    source: Decides,
    purpose: str,
    out: Path,
    as_of: str | None = None,
    dataset: str | None = None,
) -> dict:
    """Keep the contributors of ``data`` (loaded by ``task`` from ``spec``'s ``[data]``) that
    ``source`` allows for ``purpose``; write their records with ``task.export`` and the
    manifest into ``out``. ``dataset`` is the name the registry knows the data by (default:
    the data's own name). Returns the manifest."""
    name = dataset or data.name
    folder = prepare_folder(out)
    ids = np.asarray(data.contributor_ids)
    works = [contributor_work(name, i) for i in ids.tolist()]
    decisions = source.decide(name, works, purpose, as_of)
    keep = np.fromiter((d.outcome == "allowed" for d in decisions), bool, len(decisions))
    written = task.export(spec, data, keep, folder)
    codes = data.records["contributor"].to_numpy()
    manifest = {
        "kind": "dataset",
        "input": {
            "dataset": spec.data.dataset,
            "name": data.name,
            "family": task.name,
            "checksum": data.checksum(),
            "contributors": int(len(ids)),
            "records": int(len(data)),
        },
        "output": {
            "path": written.name,
            "sha256": file_sha256(written),
            "contributors": int(keep.sum()),
            "records": int(keep[codes].sum()),
        },
        "consent": _registry_section(source, name, purpose, as_of, decisions),
        "dropped": [
            {"contributor": str(i), "work": d.work, "rule": d.rule}
            for i, d in zip(ids.tolist(), decisions, strict=True)
            if d.outcome != "allowed"
        ],
    }
    write_manifest(folder, manifest)
    return manifest


def _list_lines(path: Path) -> list[str]:
    path = regular_file(path, "list of works")  # a device or a pipe would be read forever
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_LIST_BYTES + 1)  # a file that grows while read stops here too
        if len(raw) > MAX_LIST_BYTES:
            raise DataleverError(
                f"The list {path} is more than {MAX_LIST_BYTES:,} bytes, the most a list of "
                "works may hold.",
                "split it into smaller lists.",
            )
    except OSError as exc:
        raise DataleverError(
            f"Cannot read the list {path} ({exc.strerror or exc}).",
            "give a text file of URLs or file paths, one per line.",
        ) from None
    if b"\x00" in raw:
        raise DataleverError(
            f"{path} is binary, not a list of works.",
            "give a text file of URLs or file paths, one per line.",
        )
    text = raw.decode("utf-8-sig", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _work_of(line: str, folder: Path) -> tuple[str | None, str | None]:
    """The work id a list line stands for, or None and why not: a URL or any work id as it
    is, a local file as the SHA-256 of its content."""
    try:
        return parse_work(line)[1], None
    except DataleverError as exc:
        path = Path(line).expanduser()
        path = path if path.is_absolute() else folder / path
        try:
            if path.is_file():
                return f"sha256:{file_sha256(path)}", None
        except (OSError, ValueError) as err:  # a line too long for a file name, say
            return None, f"unreadable file ({getattr(err, 'strerror', None) or err})"
        return None, f"neither a work id nor a file here ({exc.problem})"


def filter_list(
    source: Decides,
    list_path: Path,
    dataset: str,
    purpose: str,
    out: Path,
    as_of: str | None = None,
) -> dict:
    """Keep the lines of a list of works (URLs, work ids or local files) that ``source``
    allows for ``purpose`` in ``dataset``. A line that names no work is dropped with the
    reason (fail closed). Writes ``kept.txt`` and the manifest into ``out``."""
    list_path = Path(list_path).expanduser()
    lines = _list_lines(list_path)
    folder = prepare_folder(out)
    resolved = [_work_of(line, list_path.parent) for line in lines]
    works = sorted({w for w, _ in resolved if w is not None})
    decided = {d.work: d for d in source.decide(dataset, works, purpose, as_of)} if works else {}
    kept, dropped = [], []
    for line, (work, why) in zip(lines, resolved, strict=True):
        if work is None:
            dropped.append({"line": line, "work": None, "rule": f"reserved: {why}"})
        elif decided[work].outcome == "allowed":
            kept.append(line)
        else:
            dropped.append({"line": line, "work": work, "rule": decided[work].rule})
    written = folder / "kept.txt"
    written.write_text("".join(f"{line}\n" for line in kept))
    manifest = {
        "kind": "list",
        "input": {"path": str(list_path), "sha256": file_sha256(list_path), "lines": len(lines)},
        "output": {"path": written.name, "sha256": file_sha256(written), "lines": len(kept)},
        "consent": _registry_section(source, dataset, purpose, as_of, list(decided.values())),
        "dropped": dropped,
    }
    write_manifest(folder, manifest)
    return manifest
