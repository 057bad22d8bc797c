"""Fit and judge the scenarios of one (learner, fold) pair.

A :class:`FoldContext` holds what every scenario of the pair shares: the fold's base training
set, the task's judge of the fold, and the no-action evaluations of the learner and of the
reference learner (the baseline for paired changes and for the share of the gap). It is built
once per worker process and reused for every batch of scenarios it is handed. Nothing here
knows the task: records, models and metrics come from the spec's task family.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from datalever.collectives import draw
from datalever.core.delta import Delta, Records
from datalever.core.learner import FastPath, Learner, Model, fit_scenarios
from datalever.core.task import Dataset, Fold, Judge, MetricValues
from datalever.levers import Lever
from datalever.levers.base import Probe
from datalever.scenarios import Scenario
from datalever.spec import Spec
from datalever.store import ScenarioResult
from datalever.tasks import LEARNERS, make_learner, parse_metric, task_of


def learner_params(spec: Spec, learner) -> dict:
    """A learner's parameters, with the spec's seed for learners that draw random numbers and
    were given no seed of their own, so every random choice flows from the spec."""
    params = learner.params()
    accepted = inspect.signature(LEARNERS[learner.name].__init__).parameters
    if "seed" in accepted and "seed" not in params:
        params["seed"] = spec.seed
    return params


def spec_folds(spec: Spec, data: Dataset) -> list[Fold]:
    """The folds of the spec's protocol on ``data``, as its task family splits them."""
    return task_of(spec).folds(spec, data)


Values = dict[str, MetricValues]


@dataclass
class FoldContext:
    spec: Spec
    data: Dataset
    fold: Fold
    learner: Learner
    judge: Judge
    metrics: list[str]
    baseline: Values
    reference: Values
    fast: FastPath | None = None
    path: str = "plain"
    no_action_model: Model | None = None
    _probes: dict = field(default_factory=dict)
    _fixed: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls, spec: Spec, data: Dataset, fold: Fold, learner_index: int, path: str = "auto"
    ) -> FoldContext:
        ls = spec.learners[learner_index]
        learner = make_learner(ls.name, learner_params(spec, ls))
        task = task_of(spec)
        metrics = list(
            dict.fromkeys(parse_metric(m, task.name).name for m in spec.evaluation.metrics)
        )
        ctx = cls(spec, data, fold, learner, task.judge(spec, data, fold), metrics, {}, {})
        base = ctx.base_training_set()
        if path == "auto":
            ctx.fast = learner.fast_path(base)
        ctx.path = ctx.fast.name if ctx.fast is not None else "plain"
        # The no-action model through the same path as the scenarios paired with it.
        no_action = Delta(np.zeros(0, dtype=np.int64))
        (model,) = fit_scenarios(learner, base, [no_action], ctx.fast)
        ctx.baseline = ctx.judge.evaluate(model, learner)
        reference = make_learner(spec.evaluation.reference)
        ctx.reference = ctx.judge.evaluate(reference.fit(base), reference)
        ctx.no_action_model = model
        return ctx

    def probed(self, lever: Lever) -> tuple[Probe | None, Values]:
        """A lever's probe on this fold, with the no-action model judged by it (the baseline of
        the lever's own metrics); worked out once per lever. The reference learner is not
        probed: a lever's own measure (a planted item's reach) has no "lead" to erase."""
        if lever not in self._probes:
            probe = lever.probe(self.data, self.fold)
            self._probes[lever] = (
                (None, {}) if probe is None else (probe, probe.evaluate(self.no_action_model))
            )
        return self._probes[lever]

    # The fold's records are cut from the data once and shared by every scenario of the fold.
    @functools.cached_property
    def _base(self) -> Records:
        return self.data.training_set(self.fold.train)

    def base_training_set(self) -> Records:
        return self._base

    @functools.cached_property
    def _has_test(self) -> np.ndarray:
        """Which contributors have held-out records in this fold."""
        contributors = self.data.records["contributor"].to_numpy()[self.fold.test]
        return np.bincount(contributors, minlength=self.data.n_contributors) > 0

    def fixed(self, lever: Lever) -> dict[str, Values]:
        """The models a lever's own metrics compare against (a competitor before any
        contribution), fitted and judged once per fold."""
        if lever not in self._fixed:
            deltas = lever.fixed_deltas(self.data, self.fold.train, seed=self.spec.seed)
            judged = {}
            for name, delta in deltas.items():
                if delta is None:
                    model = task_of(self.spec).uninformed_model(self.data, self.learner)
                else:
                    (model,) = fit_scenarios(self.learner, self._base, [delta], self.fast)
                    if lever.falls_back():
                        model = self._with_fallback(model, delta)
                judged[name] = self.judge.evaluate(model, self.learner)
            self._fixed[lever] = judged
        return self._fixed[lever]

    def _with_fallback(self, model: Model, delta: Delta) -> Model:
        """``model`` with the contributors absent from its training data served by the task's
        named fallback."""
        return task_of(self.spec).with_fallback(model, delta.apply(self._base))

    @functools.cached_property
    def _baseline_with_fallback(self) -> Values:
        """The no-action model judged with the fallback (for contributors the fold's training
        set has no records of)."""
        empty = Delta(np.zeros(0, dtype=np.int64))
        model = self._with_fallback(self.no_action_model, empty)
        return self.judge.evaluate(model, self.learner)

    def run(self, batch: list[Scenario]) -> list[ScenarioResult]:
        """Fit and judge a batch of scenarios of this (learner, fold)."""
        started = time.perf_counter()
        empty = Delta(np.zeros(0, dtype=np.int64))
        draws, plans = [], []  # per scenario: its draw, and one delta per firm of its lever
        for sc in batch:
            d = draw(sc.collective, self.data, sc.sample, self.spec.seed)
            rng = sc.collective.seed_for(self.spec.seed, sc.sample, stream=1)
            draws.append(d)
            if sc.is_baseline or (not len(d.participants) and len(sc.lever.firms) == 1):
                plans.append([empty])
            else:
                plans.append(
                    sc.lever.deltas(
                        self.data, d.participants, rng, self.fold.train, seed=self.spec.seed
                    )
                )
        # An empty delta leaves the fold's training set as it is: its model is the no-action
        # model, already fitted through the same path and judged, so it is not fitted again
        # (strikes that round to no one, such as 0.01 % of 943 users, cost nothing). Levers
        # that make the same change (a strike and a boycott of one draw) share one fit: what
        # differs between them is who is judged, not the model.
        prints = [[delta.fingerprint() for delta in plan] for plan in plans]
        first: dict[str, Delta] = {}  # each distinct change, once
        for plan, fps in zip(plans, prints, strict=True):
            for fp, delta in zip(fps, plan, strict=True):
                if not delta.is_empty:
                    first.setdefault(fp, delta)
        models = fit_scenarios(self.learner, self._base, list(first.values()), self.fast)
        # Each distinct model is judged as soon as it is fitted (batched paths hand models over
        # one at a time), by the task and by the probes of the levers that made it.
        probes = {sc.lever: self.probed(sc.lever) for sc in batch if not sc.is_baseline}
        falling_back = {
            fp
            for sc, fps in zip(batch, prints, strict=True)
            if not sc.is_baseline and sc.lever.falls_back()
            for fp in fps
        }
        judged: dict[str, Values] = {}
        judged_fallback: dict[str, Values] = {}
        probed: dict[tuple[str, Lever], Values] = {}
        for fp, model in zip(first, models, strict=True):
            judged[fp] = self.judge.evaluate(model, self.learner)
            if fp in falling_back:
                judged_fallback[fp] = self.judge.evaluate(
                    self._with_fallback(model, first[fp]), self.learner
                )
            for sc, fps in zip(batch, prints, strict=True):
                probe = probes.get(sc.lever, (None,))[0]
                if fps[0] == fp and probe is not None and (fp, sc.lever) not in probed:
                    probed[(fp, sc.lever)] = probe.evaluate(model, first[fp])
        rows = []
        for sc, d, plan, fps in zip(batch, draws, plans, prints, strict=True):
            _, probe_baseline = probes.get(sc.lever, (None, {}))
            # A lever whose firms serve newcomers by the fallback is judged with it throughout,
            # its no-action model included.
            fallback = not sc.is_baseline and sc.lever.falls_back()
            no_action = self._baseline_with_fallback if fallback else self.baseline
            judged_as = judged_fallback if fallback else judged
            firms = {
                firm: no_action if delta.is_empty else judged_as[fp]
                for firm, delta, fp in zip(sc.lever.firms, plan, fps, strict=False)
            }
            service = sc.lever.firms[0]
            values = {**firms[service], **probed.get((fps[0], sc.lever), {})}
            if plan[0].is_empty:
                values.update(probe_baseline)
            baseline = {**no_action, **probe_baseline}
            scenario_rows = self.metric_rows(sc, d, values, baseline, self.reference)
            if not sc.is_baseline:
                extra = sc.lever.extra_rows(
                    self.data,
                    d.participants,
                    firms,
                    self.fixed(sc.lever) if len(sc.lever.firms) > 1 else {},
                    no_action,
                    self.metrics,
                    seed=self.spec.seed,
                    deltas=plan,
                    fold=self.fold,
                )
                scenario_rows += [self._row(*row) for row in extra]
            rows.append(scenario_rows)
        # A batched path fits the batch at once: each scenario is charged an equal share.
        seconds = (time.perf_counter() - started) / len(batch)
        return [
            ScenarioResult(sc.key, scenario_row(sc, len(d.participants), seconds, self.path), r)
            for sc, d, r in zip(batch, draws, rows, strict=True)
        ]

    def _row(
        self, group: str, members: np.ndarray, metric: str, value: float, baseline: float
    ) -> dict:
        """A row a lever derived itself (no reference learner's value)."""
        return {
            "eval_group": group,
            "metric": metric,
            "value": _nan_to_none(value),
            "baseline": _nan_to_none(baseline),
            "reference": None,
            "n_users": int((members & self._has_test).sum()),
        }

    def metric_rows(
        self, sc: Scenario, d, values: Values, baseline: Values, reference: Values
    ) -> list[dict]:
        n = self.data.n_contributors
        participant = np.zeros(n, dtype=bool)
        participant[d.participants] = True
        groups: dict[str, np.ndarray] = {}
        wanted = self.spec.evaluation.groups
        # Under a boycott the participants leave the service: "everyone" is who remains.
        everyone = ~participant if sc.lever.leaves_service else np.ones(n, dtype=bool)
        groups["everyone"] = everyone
        if not sc.is_baseline:
            if "participants" in wanted and not sc.lever.leaves_service:
                groups["participants"] = participant
            if "non-participants" in wanted:
                groups["non-participants"] = ~participant
            if "like-participants" in wanted and d.group_members is not None:
                like = np.zeros(n, dtype=bool)
                like[d.group_members] = True
                groups["like-participants"] = like & ~participant
            if "non-members" in wanted and d.group_members is not None:
                member = np.zeros(n, dtype=bool)
                member[d.group_members] = True
                groups["non-members"] = everyone & ~member
        has_test = self._has_test
        metrics = self.metrics + [m for m in sc.lever.probe_metrics if m not in self.metrics]
        rows = []
        for name, members in groups.items():
            for m in metrics:
                if m not in values or m not in baseline:
                    continue
                rows.append(
                    {
                        "eval_group": name,
                        "metric": m,
                        "value": _nan_to_none(values[m].over(members, everyone)),
                        "baseline": _nan_to_none(baseline[m].over(members, everyone)),
                        "reference": _nan_to_none(reference[m].over(members, everyone))
                        if m in reference
                        else None,
                        "n_users": int((members & has_test).sum()),
                    }
                )
        return rows


def scenario_row(sc: Scenario, n_participants: int, seconds: float, path: str) -> dict:
    c = sc.collective
    return {
        "learner": sc.learner,
        "lever": "none" if sc.is_baseline else sc.lever.label,
        "lever_params": None if sc.is_baseline else json.dumps(sc.lever.params(), sort_keys=True),
        "collective_kind": c.kind,
        "collective": c.label,
        "size": c.size,
        "count": c.count,
        "grp": c.group,
        "sample": sc.sample,
        "fold": sc.fold,
        "n_participants": n_participants,
        "path": path,
        "seconds": seconds,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _nan_to_none(x: float) -> float | None:
    return None if x != x else x
