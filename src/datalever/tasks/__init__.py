"""The task families and the catalogues specs name things from.

Each family (:class:`~datalever.core.task.Task`) brings its learners, protocols and metrics;
this module joins their catalogues so a spec can name any of them, and tells which family a
spec's data belongs to. Adding a family is one package plus one line in :data:`TASKS`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datalever.core.config import LearnerConfig, show
from datalever.core.learner import Learner
from datalever.core.task import MetricName, Task
from datalever.errors import DataleverError
from datalever.learners.adapters import RECOMMENDER_ADAPTERS
from datalever.plugins import Catalogue
from datalever.tasks.classify.data import EMBEDDED as _EMBEDDED_EXAMPLES
from datalever.tasks.classify.learners import CLASSIFIER_ADAPTERS
from datalever.tasks.classify.task import ClassificationTask
from datalever.tasks.code.task import EMBEDDED_CORPORA, CodeTask
from datalever.tasks.recsys import RecommendationTask

if TYPE_CHECKING:
    from datalever.core.task import Dataset
    from datalever.spec import Spec

TASKS: dict[str, Task] = {
    t.name: t for t in (RecommendationTask(), ClassificationTask(), CodeTask())
}


def _plugin_learners(task: str | None = None) -> dict[str, type[Learner]]:
    """The plugins' learners (of the family ``task``, or all)."""
    from datalever import plugins

    return {n: c for n, c in plugins.learners().items() if task is None or c.task == task}


#: The adapters that make a user's own model a learner (Surprise, LensKit, a Python function,
#: a torch module; scikit-learn's is the classification family's ``sklearn``).
ADAPTERS: dict[str, type[Learner]] = {
    cls.name: cls for cls in (*RECOMMENDER_ADAPTERS, *CLASSIFIER_ADAPTERS)
}


def _family_catalogue(task: Task) -> Catalogue:
    """Everything a spec of the family can name: the family's own learners, the adapters of
    its task, and plugins' (loaded on first use). It replaces the task's ``learners`` here, so
    listings and references show the adapters; the family's module-level catalogue keeps its
    built-in learners."""
    own = task.learners.builtin if isinstance(task.learners, Catalogue) else task.learners
    adapters = {n: c for n, c in ADAPTERS.items() if c.task == task.name}
    return Catalogue({**own, **adapters}, functools.partial(_plugin_learners, task.name))


for _task in TASKS.values():
    _task.learners = _family_catalogue(_task)

#: Every learner of every family, by the name specs use (names are unique across families):
#: built-in ones, the adapters, and plugins' (loaded on first use, see
#: :mod:`datalever.plugins`).
LEARNERS: dict[str, type[Learner]] = Catalogue(
    {name: cls for task in TASKS.values() for name, cls in task.learners.builtin.items()},
    _plugin_learners,
)


def learners_of(task: str) -> list[str]:
    """The names of every learner of the family ``task`` (built-in, adapters, plugins)."""
    return sorted(TASKS[task].learners)


#: Embedded datasets (no download) and the family each belongs to.
EMBEDDED_TASK = {name: "classification" for name in _EMBEDDED_EXAMPLES} | {
    name: "code" for name in EMBEDDED_CORPORA
}


def task_of_data(dataset: str, columns: Mapping[str, str] | None, layout: str | None = None) -> str:
    """The family a spec's ``[data]`` belongs to: an embedded dataset's own; code for a folder
    of repositories (a ``layout``) or a table mapped with ``path`` and ``text`` columns;
    classification for a table mapped with a ``label`` column; recommendation otherwise."""
    if layout:
        return "code"
    if not columns and dataset in EMBEDDED_TASK:
        return EMBEDDED_TASK[dataset]
    plugin = plugin_dataset(dataset, columns, layout)
    if plugin is not None:
        return plugin.task
    if columns and "label" in columns:
        return "classification"
    if columns and {"path", "text"} <= set(columns):
        return "code"
    return "recommendation"


def task_of(spec: Spec) -> Task:
    return TASKS[spec.task]


def plugin_dataset(dataset: Any, columns: Mapping[str, str] | None, layout: str | None = None):
    """The dataset a plugin registers under the name ``dataset`` (see
    :mod:`datalever.plugins`), or ``None``: names of embedded datasets, and data mapped by
    ``columns`` or a ``layout``, are never a plugin's."""
    if layout or columns or not isinstance(dataset, str) or dataset in EMBEDDED_TASK:
        return None
    from datalever import plugins

    return plugins.load_dataset(dataset)


def load_data(spec: Spec) -> Dataset:
    """The spec's dataset: a plugin's, or loaded by its task family (paths taken from the
    spec's folder)."""
    plugin = plugin_dataset(
        spec.data.dataset, spec.data.columns, getattr(spec.data, "layout", None)
    )
    if plugin is not None:
        return plugin
    return task_of(spec).load(spec)


def load_section(section: Mapping[str, Any], source: str = "the data options"):
    """(spec, task family, dataset) for a spec's ``[data]`` table alone, for commands that read
    data without running anything (the consent filter). The spec around it is a minimal one
    of the family, so the data is loaded exactly as a run would load it."""
    from datalever.spec import spec_from_dict

    section = dict(section)
    family = TASKS[
        task_of_data(str(section.get("dataset", "")), section.get("columns"), section.get("layout"))
    ]
    raw = {
        "name": "data",
        "data": section,
        "protocol": {"kind": family.protocols[0]},
        "learners": [{"name": family.default_learner}],
        "lever": {"kind": "strike"},
        "collectives": {"sizes": [0.5]},
        "evaluation": {"metrics": [family.default_metrics[0]], "groups": ["everyone"]},
    }
    spec = spec_from_dict(raw, source)
    return spec, family, load_data(spec)


def check_learner(name: str, params: Mapping[str, Any], task: str | None = None) -> LearnerConfig:
    """The learner's parameters checked by its typed config, before anything runs: an unknown
    learner, a learner of another task family, or a bad parameter is refused with one
    paragraph naming the learner, the parameter, the value and what it accepts."""
    if not isinstance(name, str) or name not in LEARNERS:
        known = learners_of(task) if task else LEARNERS
        raise DataleverError(
            f"Unknown learner {name!r}."
            if isinstance(name, str)
            else f"Unknown learner {show(name)}.",
            f"use one of: {', '.join(sorted(known))}.",
        )
    if task is not None and LEARNERS[name].task != task:
        raise DataleverError(
            f"The learner {name!r} is a {LEARNERS[name].task} learner, but the spec's data is "
            f"a {task} dataset.",
            f"use one of: {', '.join(learners_of(task))}.",
        )
    return LEARNERS[name].Config.check(name, params)


def make_learner(name: str, params: Mapping[str, Any] | None = None) -> Learner:
    """The learner ``name`` built from its checked parameters."""
    config = check_learner(name, params or {})
    return LEARNERS[name](**config.model_dump())


@dataclass(frozen=True)
class ProbeMetric:
    """A metric a lever measures itself (such as a planted signal's success)."""

    name: str
    higher_is_better: bool


def probe_metrics() -> dict[str, list[str]]:
    """The metrics levers measure themselves, and the lever kinds that measure each (a shilled
    item and a planted one are both read by ``target_score``)."""
    from datalever.levers import LEVERS

    out: dict[str, list[str]] = {}
    for kind, cls in LEVERS.items():
        for m in cls.probe_metrics:
            out.setdefault(m, []).append(kind)
    return out


def parse_metric(name: str, task: str | None = None) -> MetricName:
    """A metric of ``task`` (of any family when ``None``), or one a lever measures itself, or
    an error listing the known ones."""
    from datalever.levers import LEVERS

    if isinstance(name, str) and name.strip().lower() in probe_metrics():
        canonical = name.strip().lower()
        lever = LEVERS[probe_metrics()[canonical][0]]
        return ProbeMetric(canonical, lever.probe_metrics[canonical])
    families = [TASKS[task]] if task else list(TASKS.values())
    errors: list[DataleverError] = []
    for family in families:
        try:
            return family.parse_metric(name)
        except DataleverError as exc:
            errors.append(exc)
    for family in TASKS.values():  # a metric of another family: say so
        if task is not None and family.name != task:
            try:
                family.parse_metric(name)
            except DataleverError:
                continue
            raise DataleverError(
                f"The metric {name!r} judges {family.name}, but the spec's data is a {task} "
                "dataset.",
                f"use one of: {', '.join(TASKS[task].metric_names())}.",
            )
    # A family's own complaint ("ndcg needs a cutoff") says more than "unknown".
    specific = [e for e in errors if not str(e).startswith("Unknown")]
    if specific:
        raise specific[0]
    known = ", ".join(m for f in families for m in f.metric_names())
    shown = repr(name)[:40] if isinstance(name, str) else show(name)
    raise DataleverError(f"Unknown metric {shown}.", f"use one of: {known}.")


__all__ = [
    "ADAPTERS",
    "LEARNERS",
    "TASKS",
    "check_learner",
    "learners_of",
    "load_data",
    "make_learner",
    "parse_metric",
    "task_of",
    "task_of_data",
]
