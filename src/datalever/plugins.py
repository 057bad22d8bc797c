"""Plugins: learners, levers, datasets and metrics that other packages register.

A package registers things under Python entry points, one group per catalogue::

    [project.entry-points."datalever.learners"]
    my_mf = "my_package.learners:MyMF"        # a Learner subclass with a task

    [project.entry-points."datalever.levers"]
    my_attack = "my_package.levers:MyAttack"  # a Lever subclass whose kind is the name

    [project.entry-points."datalever.datasets"]
    my_ratings = "my_package.data:load"       # a function: () -> Contributions or examples

    [project.entry-points."datalever.metrics"]
    my_metric = "my_package.metrics:metric"   # a function (see :func:`metrics`)

The catalogues (:data:`datalever.tasks.LEARNERS`, :data:`datalever.levers.LEVERS`) are
:class:`Catalogue` dictionaries: their built-in entries, and the plugins' loaded on first use
rather than on import, so a plugin may import datalever freely and a broken one cannot stop
``import datalever``. Each entry is checked when loaded (what it gives, its name, a clash with
a built-in or another plugin); a bad one is refused with one paragraph naming its package.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from datalever.errors import DataleverError

#: The entry-point group of each catalogue.
GROUPS = {
    "learners": "datalever.learners",
    "levers": "datalever.levers",
    "datasets": "datalever.datasets",
    "metrics": "datalever.metrics",
}
#: What a plugin's name may look like (the name a spec writes).
_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")

V = TypeVar("V")


@dataclass(frozen=True)
class Entry:
    """One registered entry point: its name, what it points at, and its package."""

    group: str
    name: str
    value: str
    package: str

    def describe(self) -> str:
        return f"{self.group} entry {self.name!r} ({self.value}) of the package {self.package!r}"

    def refuse(self, problem: str, fix: str | None = None) -> DataleverError:
        """The error that refuses this entry: it names the package, so the user knows what
        to fix or uninstall."""
        uninstall = f"pip uninstall {self.package}"
        if fix is None:
            fix = f"fix the package, or uninstall it ({uninstall})."
        elif "uninstall" not in fix:
            fix = f"{fix.rstrip('.')}; or uninstall the package ({uninstall})."
        return DataleverError(f"The plugin {self.describe()} {problem}", fix)


def _entry_points(group: str) -> list[tuple[Entry, metadata.EntryPoint]]:
    """The entry points of ``group`` installed now, one per (package, name), in name order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in metadata.entry_points(group=group):
        package = ep.dist.name if ep.dist is not None else "?"
        if (package, ep.name) in seen:  # one package found twice on the path
            continue
        seen.add((package, ep.name))
        out.append((Entry(group, ep.name, ep.value, package), ep))
    return sorted(out, key=lambda e: (e[0].name, e[0].package))


def _load(entry: Entry, ep: metadata.EntryPoint) -> Any:
    if not _NAME.match(entry.name):
        raise entry.refuse(
            "has a name a spec cannot write.",
            "name it with lower-case letters, digits, '_' and '-', starting with a letter.",
        )
    try:
        return ep.load()
    except Exception as e:  # any failure of third-party code is the package's to fix
        raise entry.refuse(f"cannot be loaded: {type(e).__name__}: {str(e)[:300]}.") from None


def _checked(
    kind: str, check: Callable[[Entry, Any], Any], builtin: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every entry of ``kind``'s group loaded and passed through ``check``; a second entry
    with the same name, or one that would hide a built-in, is refused."""
    out: dict[str, tuple[Entry, Any]] = {}
    for entry, ep in _entry_points(GROUPS[kind]):
        if builtin is not None and entry.name in builtin:
            raise entry.refuse(
                f"has the name of a built-in {kind[:-1]}.",
                f"rename the entry point, or uninstall {entry.package!r}.",
            )
        if entry.name in out:
            other = out[entry.name][0]
            raise entry.refuse(
                f"has the same name as the {other.describe()}.",
                f"uninstall one of {entry.package!r} and {other.package!r}.",
            )
        out[entry.name] = (entry, check(entry, _load(entry, ep)))
    return {name: obj for name, (_, obj) in out.items()}


def _check_learner(entry: Entry, obj: Any) -> Any:
    from datalever.core.config import LearnerConfig
    from datalever.core.learner import Learner

    if not (inspect.isclass(obj) and issubclass(obj, Learner)) or inspect.isabstract(obj):
        raise entry.refuse(
            "is not a learner.",
            "point the entry at a concrete subclass of datalever.learners.base.Learner "
            "(recommendation) or datalever.tasks.classify.learners.Classifier.",
        )
    from datalever.tasks import TASKS

    if obj.task not in TASKS:
        raise entry.refuse(
            f"names no task family its learner serves (task = {obj.task!r}).",
            f"set the class attribute task to one of: {', '.join(TASKS)}.",
        )
    if obj.name != entry.name:
        raise entry.refuse(
            f"is a learner named {obj.name!r}, not {entry.name!r}.",
            "name the entry point as the learner's name class attribute.",
        )
    if not (inspect.isclass(obj.Config) and issubclass(obj.Config, LearnerConfig)):
        raise entry.refuse(
            "has a Config that is not a datalever.core.config.LearnerConfig.",
            "declare the learner's parameters in a nested Config(LearnerConfig).",
        )
    return obj


def _check_lever(entry: Entry, obj: Any) -> Any:
    from datalever.levers.base import Lever, LeverConfig

    if not (inspect.isclass(obj) and issubclass(obj, Lever)) or inspect.isabstract(obj):
        raise entry.refuse(
            "is not a lever.",
            "point the entry at a concrete subclass of datalever.levers.base.Lever.",
        )
    if getattr(obj, "kind", None) != entry.name:
        raise entry.refuse(
            f"is a lever of kind {getattr(obj, 'kind', None)!r}, not {entry.name!r}.",
            "name the entry point as the lever's kind class attribute.",
        )
    if not (inspect.isclass(obj.Config) and issubclass(obj.Config, LeverConfig)):
        raise entry.refuse(
            "has a Config that is not a datalever.levers.base.LeverConfig.",
            "declare the lever's parameters in a nested Config(LeverConfig).",
        )
    return obj


def _check_function(entry: Entry, obj: Any) -> Any:
    if not callable(obj) or inspect.isclass(obj):
        raise entry.refuse("is not a function.", "point the entry at a function.")
    return obj


@functools.cache
def learners() -> dict[str, type]:
    """The plugins' learners by name (each a concrete Learner subclass of a known task)."""
    from datalever.tasks import LEARNERS

    return _checked("learners", _check_learner, _builtin(LEARNERS))


@functools.cache
def levers() -> dict[str, type]:
    """The plugins' levers by kind (each a concrete Lever subclass whose kind is its name)."""
    from datalever.levers import LEVERS

    return _checked("levers", _check_lever, _builtin(LEVERS))


@functools.cache
def datasets() -> dict[str, Callable[[], Any]]:
    """The plugins' dataset loaders by name: functions taking no argument that return the
    records of a task family (:class:`~datalever.data.contributions.Contributions` for ratings,
    :class:`~datalever.tasks.classify.examples.LabelledExamples` for labelled examples)."""
    return _checked("datasets", _check_function)


@functools.cache
def load_dataset(name: str) -> Any:
    """The plugin dataset ``name``, loaded (once) and checked; ``None`` when no plugin gives
    it."""
    if name not in datasets():
        return None
    entry = next(e for e, _ in _entry_points(GROUPS["datasets"]) if e.name == name)
    try:
        data = datasets()[name]()
    except DataleverError:
        raise
    except Exception as e:
        raise entry.refuse(
            f"failed to load its data: {type(e).__name__}: {str(e)[:300]}."
        ) from None
    if getattr(data, "task", None) not in ("recommendation", "classification", "code"):
        raise entry.refuse(
            f"returned {type(data).__name__}, not the records of a task family.",
            "return datalever Contributions (ratings) or LabelledExamples (labelled examples).",
        )
    return data


@functools.cache
def metrics() -> dict[str, Callable[..., Any]]:
    """The plugins' metric functions by name; each task family reads them its own way."""
    return _checked("metrics", _check_function)


def reload() -> None:
    """Forget what was loaded, so entry points installed since are found."""
    for cached in (learners, levers, datasets, load_dataset, metrics):
        cached.cache_clear()
    for catalogue in Catalogue.instances:
        catalogue.forget()


def _builtin(catalogue: Mapping[str, Any]) -> Mapping[str, Any]:
    return catalogue.builtin if isinstance(catalogue, Catalogue) else catalogue


class Catalogue(dict[str, V]):
    """A catalogue dictionary: built-in entries, and those ``plugins()`` gives, loaded on first
    read (membership, lookup, iteration) rather than on import."""

    instances: list[Catalogue] = []

    def __init__(self, builtin: Mapping[str, V], plugins: Callable[[], Mapping[str, V]]) -> None:
        super().__init__(builtin)
        self.builtin: dict[str, V] = dict(builtin)
        self._plugins = plugins
        self._loaded = False
        Catalogue.instances.append(self)

    def _ready(self) -> None:
        if not self._loaded:
            found = self._plugins()
            self._loaded = True
            dict.update(self, found)

    def forget(self) -> None:
        """Back to the built-in entries; plugins are loaded again on the next read."""
        dict.clear(self)
        dict.update(self, self.builtin)
        self._loaded = False

    def __contains__(self, key: object) -> bool:
        self._ready()
        return dict.__contains__(self, key)

    def __getitem__(self, key: str) -> V:
        self._ready()
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._ready()
        return dict.get(self, key, default)

    def __iter__(self) -> Iterator[str]:
        self._ready()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._ready()
        return dict.__len__(self)

    def keys(self):  # type: ignore[override]
        self._ready()
        return dict.keys(self)

    def values(self):  # type: ignore[override]
        self._ready()
        return dict.values(self)

    def items(self):  # type: ignore[override]
        self._ready()
        return dict.items(self)

    def __reduce__(self):
        # Pickled as a plain dictionary of what it holds.
        self._ready()
        return (dict, (dict(dict.items(self)),))
