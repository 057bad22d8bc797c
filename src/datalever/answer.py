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

from datalever.analysis.ask import (
    COARSE_SIZES,
    LOOKS,
    AdaptiveSearch,
    SearchResult,
    Verdict,
    decide,
)
from datalever.analysis.question import Target, parse_delta
from datalever.analysis.summary import per_sample
from datalever.data.contributions import Contributions
from datalever.engine.executor import Executor
from datalever.engine.runner import run_spec
from datalever.errors import DataleverError
from datalever.levers import Lever, make_lever
from datalever.spec import QuestionSpec, Spec
from datalever.store import ResultsStore
from datalever.tasks import LEARNERS, parse_metric, probe_metrics, task_of


@dataclass
class Answer:
    question: QuestionSpec
    learner: str
    lever: str
    n_users: int
    result: SearchResult
    text: str
    run_id: str

    @property
    def target(self) -> Target:
        return parse_delta(self.question.delta)

    @property
    def score_unit(self) -> str:
        """Scores of relative and gap deltas read in %, absolute ones in the metric's units."""
        kind = self.target.kind
        if kind in ("absolute", "level"):
            return f"{parse_metric(self.question.metric).name} units"
        return "% of the no-action value" if kind == "relative" else "% of the lead"

    def format_score(self, score: float) -> str:
        if self.target.kind in ("absolute", "level"):
            return f"{score:.4f}"
        return f"{100 * score:.2f} %"

    @property
    def threshold_text(self) -> str:
        return self.format_score(self.result.threshold)

    def size_rows(self) -> list[dict]:
        """One row per collective size examined: samples, mean score, bounds, decision."""
        return [
            {
                "size": v.size,
                "users": round(v.size * self.n_users),
                "samples": v.n,
                "mean_score": _none(v.mean),
                "low": _none(v.low),
                "high": _none(v.high),
                "decision": v.decision,
            }
            for v in self.result.verdicts
        ]

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
            "size": _none(r.high) if r.answer == "yes" else None,
            "size_low": _none(r.low),
            "size_high": _none(r.high),
            "estimated_threshold": _none(r.point),
            "users": round(r.high * self.n_users) if r.answer == "yes" else None,
            "out_of_time": r.out_of_time,
            "score_unit": "metric" if self.target.kind in ("absolute", "level") else "fraction",
            "sizes": self.size_rows(),
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
    if target.kind == "level":
        side = "short of" if score < 0 else "past"
        return f"brings {metric} to {_amount(target, score)} {side} {target.amount:g}"
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
    who: str = "users",
) -> str:
    """The answer in one plain sentence.

    A "Yes" names the smallest size that was itself decided to reach the delta (never an
    interpolated or undecided one) and the bracket that holds the threshold; a search stopped by
    its time budget says so.
    """
    target = parse_delta(question.delta)
    metric = parse_metric(question.metric).name
    level = f"{100 * question.confidence:g} %"
    where = f"for {question.group} ({learner}, {lever}, {dataset})"
    stopped = (
        " The time budget ran out before the search finished, so the bracket is wider than it "
        "could be; allow more time (--max-minutes) to narrow it."
        if result.out_of_time
        else ""
    )
    if result.answer == "yes":
        users = round(result.high * n_users)
        estimate = (
            f"; the smallest such share lies between {_pct(result.low)} and "
            f"{_pct(result.high)} of {who} ({level} CI; interpolated estimate "
            f"{_pct(result.point)})"
            if np.isfinite(result.point)
            else ""
        )
        return (
            f"Yes: a random collective of {_pct(result.high)} of {who} (about {users} {who}) "
            f"{target.describe(metric)} {where}, decided at the {level} level{estimate}." + stopped
        )
    if result.answer == "no":
        largest = result.verdicts[-1]
        return (
            f"No: even {_pct(largest.size)} of {who} {_score_text(target, metric, largest.high)} "
            f"at most ({level} bound; mean {_amount(target, largest.mean)}), "
            f"short of {question.delta} {where}." + stopped
        )
    undecided = [v for v in result.verdicts if v.decision == "undecided"]
    sizes = ", ".join(_pct(v.size) for v in undecided) or "none"
    why = "the time budget ran out" if result.out_of_time else "the samples allowed ran out"
    return (
        f"Undecided: {why} before the evidence settled whether a collective "
        f"{target.describe(metric)} {where}; sizes still undecided: {sizes}. "
        "Allow more time or samples."
    )


def check_answerable(spec: Spec) -> None:
    """Refuse, before anything runs, a question no search could answer."""
    q = spec.question
    if q is None:
        raise DataleverError("The spec has no [question].", "add one, or pass --delta.")
    learner = _question_learner(spec)
    if parse_delta(q.delta).kind == "gap" and learner == spec.evaluation.reference:
        raise DataleverError(
            f"A gap delta ({q.delta}) measures the share of {learner}'s lead over the reference "
            f"learner erased, but the reference is {learner} itself: the lead is zero.",
            "ask about another learner (--learner ease), or use a relative delta such as -2%.",
        )
    if q.group in ("like-participants", "non-members"):
        raise DataleverError(
            f"The group {q.group!r} exists only for targeted collectives, and "
            "ask draws random ones.",
            "ask about everyone, participants or non-participants.",
        )
    if len(spec.all_levers()) > 1:
        raise DataleverError(
            "The spec runs several levers ([[levers]]), and a question is about one.",
            "pass --lever, or give a spec with one [lever].",
        )
    if q.group == "participants" and _lever(spec).leaves_service:
        raise DataleverError(
            "Under a boycott the participants leave the service, so they are not evaluated.",
            "ask about everyone or non-participants.",
        )
    metric = parse_metric(q.metric)
    if metric.name in probe_metrics():
        return
    if not task_of(spec).computable(q.metric, LEARNERS[learner], spec):
        needs = "rating estimates" if spec.task == "recommendation" else "class probabilities"
        raise DataleverError(
            f"{metric.name} needs {needs}, which {learner} does not give.",
            "ask about another metric (such as ndcg@10 or accuracy), or about a learner that "
            f"gives {needs}.",
        )


def _question_learner(spec: Spec) -> str:
    q = spec.question
    return q.learner if q is not None and q.learner else spec.learners[0].name


def _lever(spec: Spec) -> Lever:
    """The lever a question is about: the spec's first (a question needs exactly one)."""
    first = spec.all_levers()[0]
    return make_lever(first.kind, first.params())


def _scores(
    results: pd.DataFrame, question: QuestionSpec, learner: str, lever: str
) -> dict[float, np.ndarray]:
    """Per-sample scores of every random collective size of ``lever`` in ``results``."""
    if results.empty:
        return {}
    target = parse_delta(question.delta)
    metric = parse_metric(question.metric).name
    rows = results[
        (results["learner"] == learner)
        & (results["lever"] == lever)
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
    scores = _scores(store.results(run_id), q, learner, _lever(spec).label)
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
    lever = _lever(spec).label
    who = f"{task_of(spec).contributor_noun}s"
    text = sentence(q, result, n_users, learner, lever, spec.data.dataset, who)
    return Answer(q, learner, lever, n_users, result, text, run_id)


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
    executor: str = "local",
    address: str | None = None,
) -> Answer:
    """Search collective sizes adaptively for the spec's ``[question]``; for a lever that
    brings its own set (the registry's opt-outs), judge that set. The scenarios run on this
    machine (``jobs`` processes) or, with ``executor="ray"``, on a Ray cluster."""
    q = spec.question
    assert q is not None, "ask needs a spec with a question"
    learner = _question_learner(spec)
    base = spec.model_copy(deep=True)
    base.learners = [ls for ls in spec.learners if ls.name == learner]
    blob = base.model_dump_json(exclude={"collectives", "name"})
    run_id = "ask-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
    if _lever(spec).brings_collectives:
        return _ask_fixed(base, store, data, run_id, _batches_on(data, jobs, executor, address))
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
        report = run_spec(step, store, executor=executor, run_id=run_id)
        if report.interrupted:  # Ctrl-C or SIGTERM: stop the search, keep what is stored
            raise KeyboardInterrupt
        scores = _scores(store.results(run_id), q, learner, _lever(spec).label)
        return [scores.get(size, np.zeros(0))[:n] for size, n in looks]

    with _batches_on(data, jobs, executor, address) as executor:
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
    lever = _lever(spec).label
    who = f"{task_of(spec).contributor_noun}s"
    text = sentence(q, result, n_users, learner, lever, spec.data.dataset, who)
    store.set_answer(run_id, text)
    return Answer(q, learner, lever, n_users, result, text, run_id)


def _batches_on(data: Contributions, jobs: int, executor: str, address: str | None):
    """Where the search's batches run: worker processes here, or a Ray cluster."""
    if executor == "ray":
        from datalever.engine.ray_executor import RayExecutor

        return RayExecutor(data, address)
    if executor != "local" or address is not None:
        raise DataleverError(
            f"The executor is {str(executor)[:40]!r} with the address {address!r}.",
            "use executor='local' without an address, or executor='ray'.",
        )
    return Executor(data, jobs)


def _ask_fixed(
    spec: Spec, store: ResultsStore, data: Contributions, run_id: str, batches
) -> Answer:
    """Does the lever's own set (drawn once) reach the question's delta? Its folds are its
    samples, as in the summary; the random sets as large, run beside it, are quoted."""
    q = spec.question
    assert q is not None
    if spec.protocol.kind != "data-strikes":
        raise DataleverError(
            "A fixed set, such as the registry's opt-outs, is judged over folds, and the "
            f"{spec.protocol.kind} protocol has one.",
            'use [protocol] kind = "data-strikes" (5 folds by default).',
        )
    learner, lever = _question_learner(spec), _lever(spec).label
    with batches as executor:
        report = run_spec(spec, store, executor=executor, run_id=run_id)
    if report.interrupted:
        raise KeyboardInterrupt
    target = parse_delta(q.delta)
    results = store.results(run_id)
    rows = results[
        (results["learner"] == learner)
        & (results["lever"] == lever)
        & (results["metric"] == parse_metric(q.metric).name)
        & (results["eval_group"] == q.group)
    ]
    fixed = rows[rows["collective_kind"] == "group"].sort_values("fold")
    scores = target.scores(
        (fixed["value"] - fixed["baseline"]).to_numpy(float),
        fixed["baseline"].to_numpy(float),
        fixed["reference"].to_numpy(float),
    )
    # Both bounds at the question's confidence, as an interval of that level has them.
    low, high, decision = decide(scores, target.threshold, (1 - q.confidence) / 2)
    size = float(fixed["n_participants"].iloc[0]) / data.n_contributors
    verdict = Verdict(size, scores, low, high, decision)
    answer = {"reaches": "yes", "short": "no"}.get(decision, "undecided")
    result = SearchResult(answer, target.threshold, size, size, size, [verdict])
    matched = per_sample(rows[rows["collective_kind"] == "random"])
    beside = target.scores(matched["change"], matched["baseline"], matched["reference"])
    text = fixed_sentence(q, verdict, answer, data.n_contributors, learner, lever, spec, beside)
    store.set_answer(run_id, text)
    return Answer(q, learner, lever, data.n_contributors, result, text, run_id)


def fixed_sentence(
    question: QuestionSpec,
    verdict: Verdict,
    answer: str,
    n_users: int,
    learner: str,
    lever: str,
    spec: Spec,
    matched: np.ndarray,
) -> str:
    """The answer about a fixed set in one plain sentence, with random sets as large."""
    target = parse_delta(question.delta)
    metric = parse_metric(question.metric).name
    level = f"{100 * question.confidence:g} %"
    who = f"{task_of(spec).contributor_noun}s"
    where = f"for {question.group} ({learner}, {lever}, {spec.data.dataset})"
    count = round(verdict.size * n_users)
    subject = f"the reserved set ({count} {who}, {_pct(verdict.size)})"
    bounds = f"mean {_amount(target, verdict.mean)}, {level} bounds over {verdict.n} folds"
    beside = (
        f" Random sets as large: mean {_amount(target, float(np.mean(matched)))} over "
        f"{len(matched)} draws."
        if len(matched)
        else ""
    )
    if answer == "yes":
        head = f"Yes: {subject} {target.describe(metric)} {where} ({bounds})."
    elif answer == "no":
        head = f"No: {subject} falls short of {question.delta} {where} ({bounds})."
    else:
        head = (
            f"Undecided: the folds do not settle whether {subject} "
            f"{target.describe(metric)} {where} ({bounds})."
        )
    return head + beside
