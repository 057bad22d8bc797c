"""Answer the question "can a collective change metric M by delta Z?" with evidence.

Two ways: :func:`ask` searches collective sizes adaptively, running scenarios through the engine
as it goes (reusing every scenario already in the store); :func:`answer_run` judges the sizes a
finished run already has. Both decide sizes with :class:`~datalever.analysis.ask.AdaptiveSearch`
and phrase the outcome with :func:`sentence`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datalever.analysis.ask import COARSE_SIZES, LOOKS, AdaptiveSearch, SearchResult
from datalever.analysis.question import Target, parse_delta
from datalever.analysis.summary import per_sample
from datalever.data.contributions import Contributions
from datalever.engine.executor import Executor
from datalever.engine.runner import run_spec
from datalever.metrics import parse_metric
from datalever.spec import QuestionSpec, Spec
from datalever.store import ResultsStore


@dataclass
class Answer:
    question: QuestionSpec
    learner: str
    lever: str
    n_users: int
    result: SearchResult
    text: str
    run_id: str

    def to_dict(self) -> dict:
        r = self.result
        return {
            "answer": r.answer,
            "sentence": self.text,
            "run_id": self.run_id,
            "learner": self.learner,
            "lever": self.lever,
            "metric": self.question.metric,
            "delta": self.question.delta,
            "group": self.question.group,
            "confidence": self.question.confidence,
            "size": _none(r.point),
            "size_low": _none(r.low),
            "size_high": _none(r.high),
            "users": None if np.isnan(r.point) else round(r.point * self.n_users),
            "out_of_time": r.out_of_time,
            "sizes": [
                {
                    "size": v.size,
                    "samples": v.n,
                    "mean_score": _none(v.mean),
                    "low": _none(v.low),
                    "high": _none(v.high),
                    "decision": v.decision,
                }
                for v in r.verdicts
            ],
        }


def _none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _amount(target: Target, score: float) -> str:
    if target.kind == "gap":
        return _pct(score)
    return _pct(abs(score)) if target.kind == "relative" else f"{abs(score):.4g}"


def _score_text(target: Target, metric: str, score: float) -> str:
    if target.kind == "gap":
        return f"erases {_amount(target, score)} of the lead in {metric}"
    return f"changes {metric} by {_amount(target, score)}"


def sentence(
    question: QuestionSpec,
    result: SearchResult,
    n_users: int,
    learner: str,
    lever: str,
    dataset: str,
) -> str:
    """The answer in one plain sentence."""
    target = parse_delta(question.delta)
    metric = parse_metric(question.metric).name
    level = f"{100 * question.confidence:g} %"
    where = f"for {question.group} ({learner}, {lever}, {dataset})"
    if result.answer == "yes":
        users = round(result.point * n_users)
        return (
            f"Yes: a random collective of {_pct(result.point)} of users ({level} CI "
            f"{_pct(result.low)}–{_pct(result.high)}, about {users} users) "
            f"{target.describe(metric)} {where}."
        )
    if result.answer == "no":
        largest = result.verdicts[-1]
        return (
            f"No: even {_pct(largest.size)} of users {_score_text(target, metric, largest.high)} "
            f"at most ({level} bound; mean {_amount(target, largest.mean)}), "
            f"short of {question.delta} {where}."
        )
    undecided = [v for v in result.verdicts if v.decision == "undecided"]
    sizes = ", ".join(_pct(v.size) for v in undecided) or "none"
    why = "the time budget ran out" if result.out_of_time else "the samples allowed ran out"
    return (
        f"Undecided: {why} before the evidence settled whether a collective "
        f"{target.describe(metric)} {where}; sizes still undecided: {sizes}. "
        "Allow more time or samples."
    )


def _question_learner(spec: Spec) -> str:
    q = spec.question
    return q.learner if q is not None and q.learner else spec.learners[0].name


def _scores(results: pd.DataFrame, question: QuestionSpec, learner: str) -> dict[float, np.ndarray]:
    """Per-sample scores of every random collective size in ``results``."""
    if results.empty:
        return {}
    target = parse_delta(question.delta)
    metric = parse_metric(question.metric).name
    rows = results[
        (results["learner"] == learner)
        & (results["metric"] == metric)
        & (results["eval_group"] == question.group)
        & (results["collective_kind"] == "random")
        & results["size"].notna()
    ]
    if rows.empty:
        return {}
    samples = per_sample(rows)
    out = {}
    for size, g in samples.groupby("size"):
        g = g.sort_values("sample")
        out[float(size)] = target.scores(g["change"], g["baseline"], g["reference"])
    return out


def answer_run(store: ResultsStore, run_id: str, spec: Spec, n_users: int) -> Answer | None:
    """Judge the sizes a finished run has against its spec's ``[question]``."""
    q = spec.question
    if q is None:
        return None
    learner = _question_learner(spec)
    scores = _scores(store.results(run_id), q, learner)
    if not scores:
        return None
    n = min(len(v) for v in scores.values())
    search = AdaptiveSearch(
        lambda s, k: scores[s][:k],
        parse_delta(q.delta).threshold,
        q.confidence,
        coarse=sorted(scores),
        looks=(n,),
        tolerance=1.0,
    )
    result = search.run()
    text = sentence(q, result, n_users, learner, spec.lever.kind, spec.data.dataset)
    return Answer(q, learner, spec.lever.kind, n_users, result, text, run_id)


def ask(
    spec: Spec,
    store: ResultsStore,
    data: Contributions,
    *,
    max_seconds: float | None = None,
    jobs: int = 1,
    coarse: tuple[float, ...] = COARSE_SIZES,
    looks: tuple[int, ...] = LOOKS,
    on_look: Callable[[list[tuple[float, int]]], None] | None = None,
) -> Answer:
    """Search collective sizes adaptively for the spec's ``[question]``."""
    q = spec.question
    assert q is not None, "ask needs a spec with a question"
    learner = _question_learner(spec)
    base = spec.model_copy(deep=True)
    base.learners = [ls for ls in spec.learners if ls.name == learner]
    blob = base.model_dump_json(exclude={"collectives", "name"})
    run_id = "ask-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
    n_users = data.n_contributors
    resolution = 1 / n_users

    def evaluate_many(looks: list[tuple[float, int]]) -> list[np.ndarray]:
        if on_look:
            on_look(looks)
        step = base.model_copy(deep=True)
        step.collectives.sizes = sorted({size for size, _ in looks})
        step.collectives.counts = []
        step.collectives.groups = []
        step.collectives.samples = max(n for _, n in looks)
        # Sizes looked at with fewer samples than the most in this batch get those extra
        # samples too; they are kept in the store and simply used at the next look.
        run_spec(step, store, executor=executor, run_id=run_id)
        scores = _scores(store.results(run_id), q, learner)
        return [scores.get(size, np.zeros(0))[:n] for size, n in looks]

    with Executor(data, jobs) as executor:
        search = AdaptiveSearch(
            lambda size, n: evaluate_many([(size, n)])[0],
            parse_delta(q.delta).threshold,
            q.confidence,
            coarse=coarse,
            looks=looks,
            resolution=resolution,
            max_seconds=max_seconds,
            evaluate_many=evaluate_many,
        )
        result = search.run()
    text = sentence(q, result, n_users, learner, spec.lever.kind, spec.data.dataset)
    store.set_answer(run_id, text)
    return Answer(q, learner, spec.lever.kind, n_users, result, text, run_id)
