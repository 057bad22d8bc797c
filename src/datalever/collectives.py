"""Collectives: who acts together.

A collective is drawn either at random by size (a fraction or a count of all contributors) or
from a group chosen by attribute, of which a share participates (half by default, as in the
Data Strikes paper). Every draw flows from the spec's seed, the collective's description and
the sample number, so the same spec always draws the same people, whatever else it contains.

Group syntax: ``gender:F``, ``age:18-24`` (inclusive; ``age:25`` for one value),
``occupation:student``, ``genre-fans:Horror`` (more than 10 ratings in the genre with a mean of
at least 4), ``top-10%`` / ``bottom-10%`` (by number of ratings, at or beyond the 90th / 10th
percentile), ``file:PATH`` (a text file of contributor ids, one per line).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datalever.data.contributions import Contributions
from datalever.data.guard import regular_file, shown, user_path
from datalever.errors import DataleverError


@dataclass(frozen=True)
class Collective:
    """How a collective is chosen. ``kind`` is ``"none"`` (no action), ``"random"`` or
    ``"group"``; random ones have a ``size`` (fraction of contributors) or a ``count``."""

    kind: str
    size: float | None = None
    count: int | None = None
    group: str | None = None
    participation: float = 1.0
    #: Where a relative ``file:`` group path is taken from (the spec's folder); not part of the
    #: collective's identity, so the same spec draws the same people wherever it lies.
    folder: str | None = field(default=None, compare=False)
    #: A fixed set of contributor codes (a group a lever resolved itself, such as a registry's
    #: reserved contributors): they all act, in every sample.
    members: tuple[int, ...] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "random":
            return (
                f"random {self.count} users"
                if self.count is not None
                else (f"random {self.size:.4g}")
            )
        return f"{self.group} ×{self.participation:g}"

    def seed_for(self, seed: int, sample: int, stream: int = 0) -> np.random.Generator:
        """The random generator of one sample; ``stream`` separates independent choices
        (0: who participates, 1: what a lever draws: which records a partial strike withholds,
        then, for vandalism, the new ratings)."""
        digest = hashlib.sha256(f"{self.kind}|{self.group}|{self.size}|{self.count}".encode())
        key = int.from_bytes(digest.digest()[:8], "big")
        return np.random.default_rng([seed, key, sample, stream])


@dataclass(frozen=True)
class Draw:
    """One drawn collective: participant codes and, for a targeted group, its members."""

    participants: np.ndarray
    group_members: np.ndarray | None = None


def draw(collective: Collective, data: Contributions, sample: int, seed: int) -> Draw:
    """The participants of ``collective`` for sample number ``sample``."""
    n = data.n_contributors
    if collective.kind == "none":
        return Draw(np.zeros(0, dtype=np.int64))
    rng = collective.seed_for(seed, sample)
    if collective.kind == "random":
        count = collective.count if collective.count is not None else round(collective.size * n)
        if count > n:
            raise DataleverError(
                f"A collective of {count} users was asked for, but {data.name} has {n}.",
                "use a size between 0 and 1, or a count no larger than the number of users.",
            )
        return Draw(np.sort(rng.choice(n, size=count, replace=False)))
    if collective.members is not None:
        members = np.asarray(collective.members, dtype=np.int64)
        return Draw(members, members)
    members = np.flatnonzero(group_members(data, collective.group, collective.folder))
    count = round(collective.participation * len(members))
    participants = np.sort(rng.choice(members, size=count, replace=False))
    return Draw(participants, members)


_PCT = re.compile(r"^(top|bottom)-(\d+(?:\.\d+)?)%$")


def group_members(data: Contributions, group: str, folder: str | None = None) -> np.ndarray:
    """A boolean mask over contributors for a group description (see the module docstring);
    a relative ``file:`` path is taken from ``folder`` when given."""
    mask = _select(data, group.strip(), folder)
    if not mask.any():
        raise DataleverError(
            f"The group {group!r} selects nobody in {data.name}.",
            "check the attribute value's spelling (see `datalever data info`), or choose "
            "another group.",
        )
    return mask


def _select(data: Contributions, group: str, folder: str | None = None) -> np.ndarray:
    n = data.n_contributors
    counts = np.bincount(data.records["contributor"], minlength=n)
    if m := _PCT.match(group):
        pct = float(m.group(2))
        if not 0 < pct <= 100:
            raise DataleverError(
                f"The share in {group!r} must be in (0, 100].", "write it as e.g. top-10%."
            )
        if m.group(1) == "top":
            return counts >= np.percentile(counts, 100 - pct)
        return counts <= np.percentile(counts, pct)
    attr, sep, value = group.partition(":")
    if not sep:
        raise DataleverError(
            f"Cannot read the group {group!r}.",
            "write groups as gender:F, age:18-24, occupation:student, genre-fans:Horror, "
            "top-10%, bottom-10% or file:ids.txt.",
        )
    if attr == "file":
        return _from_file(data, group_file(value, folder))
    if attr == "genre-fans":
        return _genre_fans(data, value)
    if attr not in data.contributors.columns:
        have = ", ".join(data.contributors.columns) or "none"
        raise DataleverError(
            f"{data.name} has no contributor attribute {attr!r} (attributes: {have}).",
            "choose a group by an attribute the dataset has, or by activity (top-10%).",
        )
    column = data.contributors[attr]
    if attr == "age":
        lo, _, hi = value.partition("-")
        try:
            lo_v, hi_v = float(lo), float(hi or lo)
        except ValueError:
            raise DataleverError(
                f"Cannot read the age range {value!r}.", "write it as age:18-24 or age:25."
            ) from None
        ages = column.astype(float).to_numpy()
        return (ages >= lo_v) & (ages <= hi_v)
    return (column.astype(str).str.lower() == value.lower()).to_numpy()


def _genre_fans(data: Contributions, genre: str) -> np.ndarray:
    known = data.genres()
    match = [g for g in known if g.lower() == genre.lower()]
    if not match:
        raise DataleverError(
            f"{data.name} has no genre {genre!r}.",
            f"use one of: {', '.join(known) or '(the dataset has no genres)'}.",
        )
    in_genre = data.items["genres"].fillna("").str.split("|").apply(lambda gs: match[0] in gs)
    r = data.records
    rows = in_genre.to_numpy()[r["item"].to_numpy()]
    users = r["contributor"].to_numpy()[rows]
    n = data.n_contributors
    count = np.bincount(users, minlength=n)
    total = np.bincount(users, weights=r["rating"].to_numpy()[rows], minlength=n)
    mean = np.divide(total, count, out=np.zeros(n), where=count > 0)
    return (count > 10) & (mean >= 4)


def group_file(text: str, folder: str | None = None) -> Path:
    """The file a ``file:`` group names: relative paths are taken from ``folder``."""
    path = Path(text).expanduser()
    return path if path.is_absolute() or folder is None else Path(folder) / path


#: Largest group file read (a file of ids for all 162,541 MovieLens-25M users is about 1 MB).
MAX_GROUP_FILE_BYTES = 64 << 20


def _from_file(data: Contributions, path: Path) -> np.ndarray:
    """Contributors whose ids are listed in a UTF-8 text file, one per line; ids the dataset
    does not have are ignored, but a file that names nobody is an error."""
    path = user_path(path, "group file", "give the path of a text file of ids, one per line.")
    path = regular_file(path, "group file")
    try:
        size = path.stat().st_size
        if size > MAX_GROUP_FILE_BYTES:
            raise DataleverError(
                f"The group file {shown(path, 200)} is {size:,} bytes; a list of ids is at "
                f"most {MAX_GROUP_FILE_BYTES:,}.",
                "give a text file of contributor ids, one per line.",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DataleverError(
            f"The group file {shown(path, 200)} cannot be read ({shown(exc.strerror or exc)}).",
            "check its permissions.",
        ) from None
    if b"\x00" in raw:
        raise DataleverError(
            f"The group file {shown(path, 200)} is binary, not a text file of ids.",
            "give a text file of contributor ids, one per line.",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataleverError(
            f"The group file {shown(path, 200)} is not UTF-8 text (byte {exc.start:,} cannot "
            "be decoded).",
            "save it as UTF-8 text with one contributor id per line.",
        ) from None
    wanted = {line.strip() for line in text.splitlines() if line.strip()}
    if not wanted:
        raise DataleverError(
            f"The group file {shown(path, 200)} lists no ids.",
            "write one contributor id per line.",
        )
    ids = np.asarray(data.contributor_ids).astype(str)
    mask = np.isin(ids, list(wanted))
    if not mask.any():
        examples = ", ".join(shown(i, 20) for i in ids[:3])
        listed = "The 1 id" if len(wanted) == 1 else f"None of the {len(wanted):,} ids"
        verb = "is not" if len(wanted) == 1 else "is"
        raise DataleverError(
            f"{listed} in the group file {shown(path, 200)} {verb} a contributor of "
            f"{shown(data.name)} (its ids look like {examples}).",
            "list the dataset's contributor ids (its user column), one per line.",
        )
    return mask
