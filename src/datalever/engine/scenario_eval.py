"""Fit and judge the scenarios of one (learner, fold) pair.

A :class:`FoldContext` holds what every scenario of the pair shares: the fold's training and
held-out records, and the no-action evaluations of the learner and of the reference learner
(the baseline for paired changes and for the share of the gap). It is built once per worker
process and reused for every batch of scenarios it is handed.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from datalever.collectives import draw
from datalever.data.contributions import Contributions, TrainingSet
from datalever.learners import LEARNERS, Learner, make_learner
from datalever.learners.base import Delta, FastPath, Model, fit_scenarios
from datalever.metrics import (
    Evaluation,
    HeldOut,
    Metric,
    RatingsTask,
    TopNTask,
    group_value,
    parse_metric,
)
from datalever.protocols import DataStrikesProtocol, Fold, HoldoutProtocol, Protocol
from datalever.scenarios import Scenario
from datalever.spec import Spec
from datalever.store import ScenarioResult


def learner_params(spec: Spec, learner) -> dict:
    """A learner's parameters, with the spec's seed for learners that draw random numbers and
    were given no seed of their own, so every random choice flows from the spec."""
    params = learner.params()
    accepted = inspect.signature(LEARNERS[learner.name].__init__).parameters
    if "seed" in accepted and "seed" not in params:
        params["seed"] = spec.seed
    return params


def make_protocol(spec: Spec) -> Protocol:
    p = spec.protocol
    if p.kind == "data-strikes":
        return DataStrikesProtocol(n_folds=p.folds)
    return HoldoutProtocol(test_fraction=p.test_fraction)


@dataclass
class FoldContext:
    spec: Spec
    data: Contributions
    fold: Fold
    learner: Learner
    metrics: list[Metric]
    baseline: dict[str, tuple[np.ndarray, np.ndarray]]
    reference: dict[str, tuple[np.ndarray, np.ndarray]]
    fast: FastPath | None = None
    path: str = "plain"

    @classmethod
    def build(
        cls, spec: Spec, data: Contributions, fold: Fold, learner_index: int, path: str = "auto"
    ) -> FoldContext:
        ls = spec.learners[learner_index]
        learner = make_learner(ls.name, learner_params(spec, ls))
        metrics = [parse_metric(m) for m in spec.evaluation.metrics]
        if not learner.predicts_ratings or spec.protocol.kind == "holdout":
            metrics = [m for m in metrics if not m.needs_ratings]
        ctx = cls(spec, data, fold, learner, metrics, {}, {})
        base = ctx.base_training_set()
        if path == "auto":
            ctx.fast = learner.fast_path(base)
        ctx.path = ctx.fast.name if ctx.fast is not None else "plain"
        # The no-action model through the same path as the scenarios paired with it.
        no_action = Delta(np.zeros(0, dtype=np.int64))
        (model,) = fit_scenarios(learner, base, [no_action], ctx.fast)
        ctx.baseline = ctx.per_user(ctx.evaluate(model))
        reference = make_learner(spec.evaluation.reference)
        ctx.reference = ctx.per_user(ctx.evaluate(reference.fit(base), reference.predicts_ratings))
        return ctx

    # The fold's records are cut from the data once and shared by every scenario of the fold.
    @functools.cached_property
    def _base(self) -> TrainingSet:
        return self.data.training_set(self.fold.train)

    @functools.cached_property
    def _held_out(self) -> HeldOut:
        ts = self.data.training_set(self.fold.test)
        return HeldOut(ts.users, ts.items, ts.ratings, ts.n_users)

    def base_training_set(self) -> TrainingSet:
        return self._base

    def held_out(self) -> HeldOut:
        return self._held_out

    def evaluate(self, model: Model, predicts_ratings: bool | None = None) -> Evaluation:
        if self.spec.protocol.kind == "data-strikes":
            errors = self.learner.predicts_ratings if predicts_ratings is None else predicts_ratings
            return self._ratings.evaluate(model, errors)
        return self._topn.evaluate(model)

    @functools.cached_property
    def _has_test(self) -> np.ndarray:
        """Which contributors have held-out records in this fold."""
        contributors = self.data.records["contributor"].to_numpy()[self.fold.test]
        return np.bincount(contributors, minlength=self.data.n_contributors) > 0

    # The judging of the fold is prepared once; ties are broken in one order per fold.
    @property
    def _tie_seed(self) -> int:
        return hash_seed(self.spec.seed, self.fold.index)

    @functools.cached_property
    def _ratings(self) -> RatingsTask:
        return RatingsTask(self.held_out(), self.spec.protocol.relevance_threshold, self._tie_seed)

    @functools.cached_property
    def _topn(self) -> TopNTask:
        base = self.base_training_set()
        return TopNTask(
            self.held_out(),
            base.users,
            base.items,
            self.spec.protocol.list_length,
            tie_seed=self._tie_seed,
        )

    def per_user(self, ev: Evaluation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for m in self.metrics:
            if m.needs_ratings and ev.sq_error is None:
                continue
            out[m.name] = m.per_user(ev)
        return out

    def run(self, batch: list[Scenario]) -> list[ScenarioResult]:
        """Fit and judge a batch of scenarios of this (learner, fold)."""
        started = time.perf_counter()
        draws, deltas = [], []
        for sc in batch:
            d = draw(sc.collective, self.data, sc.sample, self.spec.seed)
            rng = sc.collective.seed_for(self.spec.seed, sc.sample, stream=1)
            draws.append(d)
            deltas.append(
                sc.lever.delta(self.data, d.participants, rng, self.fold.train)
                if len(d.participants)
                else Delta(np.zeros(0, dtype=np.int64))
            )
        # An empty delta leaves the fold's training set as it is: its model is the no-action
        # model, already fitted through the same path and judged, so it is not fitted again
        # (strikes that round to no one, such as 0.01 % of 943 users, cost nothing). Levers
        # that make the same change (a strike and a boycott of one draw) share one fit: what
        # differs between them is who is judged, not the model.
        fingerprints = [delta.fingerprint() for delta in deltas]
        first: dict[str, int] = {}  # each distinct change, at its first scenario
        for i, (fp, delta) in enumerate(zip(fingerprints, deltas, strict=True)):
            if not delta.is_empty:
                first.setdefault(fp, i)
        models = fit_scenarios(
            self.learner, self.base_training_set(), [deltas[i] for i in first.values()], self.fast
        )
        judged = {
            fp: self.per_user(self.evaluate(model)) for fp, model in zip(first, models, strict=True)
        }
        values = [
            self.baseline if delta.is_empty else judged[fp]
            for fp, delta in zip(fingerprints, deltas, strict=True)
        ]
        rows = [self.metric_rows(sc, d, v) for sc, d, v in zip(batch, draws, values, strict=True)]
        # A batched path fits the batch at once: each scenario is charged an equal share.
        seconds = (time.perf_counter() - started) / len(batch)
        return [
            ScenarioResult(sc.key, scenario_row(sc, len(d.participants), seconds, self.path), r)
            for sc, d, r in zip(batch, draws, rows, strict=True)
        ]

    def metric_rows(self, sc: Scenario, d, values) -> list[dict]:
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
        rows = []
        for name, members in groups.items():
            for m in self.metrics:
                if m.name not in values:
                    continue
                rows.append(
                    {
                        "eval_group": name,
                        "metric": m.name,
                        "value": _group(m, values[m.name], members, everyone),
                        "baseline": _group(m, self.baseline[m.name], members, everyone),
                        "reference": _group(m, self.reference[m.name], members, everyone)
                        if m.name in self.reference
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


def hash_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _group(metric, per_user, members: np.ndarray, everyone: np.ndarray) -> float | None:
    """The metric over ``members``; shares are of everyone the service still serves."""
    return _nan_to_none(group_value(metric, *per_user, members, everyone))


def _nan_to_none(x: float) -> float | None:
    return None if x != x else x
