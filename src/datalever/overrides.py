"""Command-line overrides of spec values, as Hydra and RecBole users write them:
``--set learners.0.n_factors=50``.

An override is a dotted path into the spec (list entries by index: ``learners.0`` or
``learners[0]``) and a value read as a TOML value (``50`` an int, ``0.1`` a float, ``[1, 2]``
a list, ``true`` a boolean, ``"x"`` or a bare ``x`` a string). Overrides are applied to the
spec as TOML reads it, before validation, so the typed spec models check the result as they
check a spec file; the overridden spec is the one a run stores, so its run id and scenario keys
follow the values actually used.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from datalever.data.guard import shown
from datalever.errors import DataleverError

#: One path segment: a key of a table, or the index of a list entry.
_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_MAX_OVERRIDE = 10_000


@dataclass(frozen=True)
class Override:
    """One ``PATH=VALUE`` from the command line, parsed."""

    text: str
    path: tuple[str | int, ...]
    value: Any

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


def parse_override(text: str) -> Override:
    """``learners.0.n_factors=50`` as a path and a typed value, or one clear error."""
    key, sep, value = text.partition("=")
    how = "write it as PATH=VALUE, e.g. --set learners.0.n_factors=50 or --set seed=7."
    if len(text) > _MAX_OVERRIDE:
        raise DataleverError(
            f"The override {shown(text, 60)!r} is {len(text):,} characters long.", how
        )
    if not sep or not key.strip():
        raise DataleverError(f"Cannot read the override {shown(text, 80)!r}.", how)
    dotted = re.sub(r"\[(\d+)\]", r".\1", key.strip())  # learners[0].k is learners.0.k
    parts = dotted.split(".")
    if not all(_SEGMENT.fullmatch(p) for p in parts):
        raise DataleverError(
            f"Cannot read the path {shown(key.strip(), 80)!r} of the override "
            f"{shown(text, 80)!r}: each part is a name or a list index, joined by dots.",
            how,
        )
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    return Override(text, path, parse_value(value.strip()))


def parse_value(text: str) -> Any:
    """A value as TOML reads it (``50``, ``0.1``, ``[1, 2]``, ``true``, ``"x"``); text that
    is not a TOML value (a bare word such as ``biased_mf``) stays text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(texts: Iterable[str]) -> list[Override]:
    """Every ``--set`` given, in order; a path given twice is refused (which one is meant?)."""
    out = [parse_override(t) for t in texts]
    seen: dict[tuple, str] = {}
    for o in out:
        if o.path in seen:
            raise DataleverError(
                f"--set gives {o.dotted} twice ({shown(seen[o.path], 80)!r} and "
                f"{shown(o.text, 80)!r}).",
                "give each path once.",
            )
        seen[o.path] = o.text
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None


def _is_list(annotation: Any) -> bool:
    """Whether an annotation is a list (``list[X]`` or ``list[X] | None``)."""
    if typing.get_origin(annotation) is list:
        return True
    return any(typing.get_origin(a) is list for a in typing.get_args(annotation))


def _known_keys(model: type[BaseModel] | None) -> list[str]:
    return [] if model is None else [k for k in model.model_fields if k != "folder"]


def _allows_extra(model: type[BaseModel] | None) -> bool:
    """Whether a table takes keys of its own (a learner's or lever's parameters)."""
    return model is not None and model.model_config.get("extra") == "allow"


def _where(path: tuple) -> str:
    return ".".join(str(p) for p in path) if path else "the spec's top level"


def apply_overrides(raw: dict, overrides: Iterable[Override], root: type[BaseModel]) -> dict:
    """``raw`` with each override applied in place (and returned). A key the spec does not
    write but its model knows (``evaluation.confidence``, a learner's ``n_factors``) is
    added; an unknown key or an index past a list's end is refused, naming the path and
    what is there."""
    for o in overrides:
        _apply(raw, o, root)
    return raw


def _apply(raw: dict, o: Override, root: type[BaseModel]) -> None:
    node: Any = raw
    model: type[BaseModel] | None = root
    for depth, part in enumerate(o.path):
        last = depth == len(o.path) - 1
        here = o.path[:depth]
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                entries = (
                    f"{len(node)} entries, indexed 0 to {len(node) - 1}" if node else "no entries"
                )
                raise DataleverError(
                    f"--set {o.dotted}: {_where(here)} is a list with {entries}, so "
                    f"{part!r} does not name one of them.",
                    f"use an index from 0 to {len(node) - 1}."
                    if node
                    else f"write {_where(here)} as a whole list, e.g. --set {_where(here)}=[...].",
                )
            if last:
                node[part] = o.value
                return
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise DataleverError(
                f"--set {o.dotted}: {_where(here)} is a single value ({shown(repr(node), 60)}), "
                "not a table, so it has nothing to set inside.",
                f"set {_where(here)} itself, e.g. --set {_where(here)}=VALUE.",
            )
        key = str(part)
        field = model.model_fields.get(key) if model is not None else None
        if key not in node and model is not None and field is None and not _allows_extra(model):
            have = sorted(set(node) | set(_known_keys(model)))
            raise DataleverError(
                f"--set {o.dotted}: {_where(here)} has no key {key!r}; "
                + (f"it has: {', '.join(have)}." if have else "it takes no keys."),
                "check the spelling against the spec (see examples/data-strikes-ml100k.toml).",
            )
        if last:
            node[key] = o.value
            return
        child_model = _model_of(field.annotation) if field is not None else None
        if key not in node:
            if child_model is None:
                raise DataleverError(
                    f"--set {o.dotted}: {_where(here + (key,))} is not a table, so it has "
                    "nothing to set inside.",
                    f"set {_where(here + (key,))} itself.",
                )
            if _is_list(field.annotation):
                raise DataleverError(
                    f"--set {o.dotted}: the spec has no {key} list to index into.",
                    f"write {key} in the spec file, or set it whole with --set {key}=[...].",
                )
            node[key] = {}
        node = node[key]
        model = child_model


def described(source: str, overrides: list[Override]) -> str:
    """A spec's source with its overrides named, for error messages."""
    return f"{source} with --set {', '.join(o.dotted for o in overrides)}"


def parse_spec_with(text: str, overrides: list[Override], source: str = "spec"):
    """:func:`datalever.spec.parse_spec` with ``overrides`` applied before validation."""
    from datalever.spec import Spec, parse_spec, spec_from_dict, toml_table

    if not overrides:
        return parse_spec(text, source)
    raw = apply_overrides(toml_table(text, source), overrides, Spec)
    return spec_from_dict(raw, described(source, overrides))


def load_spec_with(path: Path, overrides: list[Override]):
    """:func:`datalever.spec.load_spec` with ``overrides`` applied before validation."""
    from datalever.spec import load_spec, read_spec_text

    if not overrides:
        return load_spec(path)
    spec = parse_spec_with(read_spec_text(path), overrides, str(path))
    spec.folder = str(path.resolve().parent)
    return spec


def override_dict(raw: dict, overrides: list[Override]) -> dict:
    """A spec dictionary (``Spec.stored()``'s, or one built from flags) with ``overrides``
    applied; validated by the caller."""
    from datalever.spec import Spec

    return apply_overrides(raw, overrides, Spec)
