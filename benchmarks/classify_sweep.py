"""Classification strike sweeps: datalever's engine against scikit-learn refitting per scenario.

For each learner (the closed-form ``multinomial_nb``, ``gaussian_nb``, ``ridge`` and ``lda``,
and ``logistic`` as a sanity row, plain fits on both sides) and each dataset (scikit-learn's
digits, 1,797 examples, and ``make_classification`` data of ``--examples`` examples, 100,000 by
default, one contributor per example), the script runs one random-strike sweep (1, 5, 10 and
30 % of contributors, ``--samples`` draws each, on fold 0 of a stratified 5-fold split) on
both sides in the same run:

* **datalever**: the engine, ``run_spec(spec, store, data=..., jobs=1)`` into a new SQLite store
  (in ``/dev/shm``, in memory, unless ``--store-dir`` says otherwise). Its time is the whole
  call: the data's checksum, the plan, the fold's set-up (fast-path statistics, the no-action
  model and the prior reference, both judged), drawing every collective, fitting, judging
  every metric for every evaluation group, and storing every result.
* **scikit-learn**: what a competent user would write to get the same numbers. Per fold: cut
  the training and held-out examples, fit the no-action model (the baseline every stored row
  carries) and judge it. Per scenario: fit a fresh estimator (``MultinomialNB``,
  ``GaussianNB``, ``RidgeClassifier``, ``LinearDiscriminantAnalysis(solver="lsqr")``,
  ``LogisticRegression``, datalever's parameters) on the fold's training examples less the
  strikers' (``X[keep]``: passing zero sample weights instead was no faster), with
  ``assume_finite=True`` to skip input checks; score the held-out examples once
  (``predict_proba``, or ``decision_function`` for ridge); and compute, for every evaluation
  group, ``accuracy_score``, ``f1_score(average="macro")`` and, for the probabilistic learners,
  ``log_loss`` of the probabilities floored at 1e-15 (datalever's definition; scikit-learn's
  own floor is 2.2e-16) from ``sklearn.metrics``. The strikers' training positions are drawn
  beforehand, outside its timing; datalever draws them inside its own. It judges no reference
  model; datalever does.

Both sides run on one core: BLAS and OpenMP are pinned to one thread with threadpoolctl. The
ratio is scenarios per second of datalever over scikit-learn, each the median over
``--repeats`` runs, in wall time and in CPU seconds; every run of the engine starts from a
fresh store and fresh fold contexts, and a warm-up run on another seed comes first. For every
scenario and group of the first run, the script checks that the engine's stored values equal
scikit-learn's: accuracy and macro-F1 to 1e-12, log-loss to 1e-9 (exit status 1 otherwise).

Two more tables show where the time goes: datalever's parts timed outside the engine (the
fast path's set-up per fold, and per scenario a fast-path fit, a plain fit, and judging), the
rest of the engine's time per scenario (drawing, the no-action and reference models, result
rows, storing), and scikit-learn's fitting, predicting and metrics; then the fits alone by
strike size.

    python benchmarks/classify_sweep.py                 # the full run: about 10 minutes
    python benchmarks/classify_sweep.py --quick         # smoke run: seconds
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from sklearn import discriminant_analysis, linear_model, naive_bayes
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score, log_loss
from threadpoolctl import threadpool_limits

from datalever.collectives import draw
from datalever.core.delta import Delta
from datalever.core.task import Fold
from datalever.engine.runner import run_spec
from datalever.engine.scenario_eval import spec_folds
from datalever.scenarios import Scenario, plan
from datalever.spec import Spec, spec_from_dict
from datalever.store import ResultsStore
from datalever.tasks import make_learner, task_of
from datalever.tasks.classify.examples import LabelledExamples, load_digits_dataset
from datalever.tasks.classify.metrics import LOG_LOSS_FLOOR

LEARNERS = ("multinomial_nb", "gaussian_nb", "ridge", "lda", "logistic")
CLOSED_FORM = LEARNERS[:4]
SIZES = (0.01, 0.05, 0.1, 0.3)
GROUPS = ("everyone", "participants", "non-participants")
#: Agreement per scenario: accuracy and macro-F1 are ratios of the same counts when the
#: predictions agree; log-loss is a mean of logarithms of probabilities equal to rounding.
RATIO_TOLERANCE = 1e-12
LOG_LOSS_TOLERANCE = 1e-9


def peer_estimator(name: str):
    """scikit-learn's estimator for one of datalever's learners, with the same parameters."""
    return {
        "multinomial_nb": lambda: naive_bayes.MultinomialNB(alpha=1.0),
        "gaussian_nb": lambda: naive_bayes.GaussianNB(var_smoothing=1e-9),
        "ridge": lambda: linear_model.RidgeClassifier(alpha=1.0),
        "lda": lambda: discriminant_analysis.LinearDiscriminantAnalysis(solver="lsqr"),
        "logistic": lambda: linear_model.LogisticRegression(C=1.0, max_iter=200),
    }[name]()


def synthetic(n_examples: int, n_features: int, n_classes: int, seed: int) -> LabelledExamples:
    """``make_classification`` data, one contributor per example. The features are shifted
    to be non-negative (each column's minimum becomes 0), so multinomial NB applies."""
    X, y = make_classification(
        n_samples=n_examples,
        n_features=n_features,
        n_informative=min(n_features, 30),
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    return LabelledExamples.from_arrays(f"synthetic-{n_examples}", X - X.min(axis=0), y)


def sweep_spec(
    data: LabelledExamples, learner: str, samples: int, folds: int, groups: list[str], seed: int
) -> Spec:
    probabilistic = make_learner(learner).probabilistic
    metrics = ["accuracy", "macro_f1"] + (["log_loss"] if probabilistic else [])
    return spec_from_dict(
        {
            "name": f"classify sweep {learner}",
            "seed": seed,
            "data": {"dataset": f"{data.name}.csv", "columns": {"label": "label"}},
            "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": folds},
            "learners": [{"name": learner}],
            "levers": [{"kind": "strike"}],
            "collectives": {"sizes": list(SIZES), "samples": samples},
            "evaluation": {"metrics": metrics, "groups": groups, "reference": "prior"},
        }
    )


@dataclass
class Scenarios:
    """A sweep's struck scenarios as the engine draws them: their deltas and the strikers."""

    folds: list[Fold]
    plan: list[Scenario]
    deltas: list[Delta]
    participants: list[np.ndarray]

    @classmethod
    def of(cls, spec: Spec, data: LabelledExamples) -> Scenarios:
        folds = spec_folds(spec, data)
        struck = [sc for sc in plan(spec, data.checksum()) if not sc.is_baseline]
        deltas, participants = [], []
        for sc in struck:
            d = draw(sc.collective, data, sc.sample, spec.seed)
            rng = sc.collective.seed_for(spec.seed, sc.sample, stream=1)
            deltas.append(sc.lever.delta(data, d.participants, rng, folds[sc.fold].train))
            participants.append(d.participants)
        return cls(folds, struck, deltas, participants)

    def of_fold(self, fold: int) -> list[int]:
        return [i for i, sc in enumerate(self.plan) if sc.fold == fold]


def scenario_key(sc: Scenario) -> tuple[str, int, int]:
    return sc.collective.label, sc.sample, sc.fold


@dataclass
class Timed:
    wall: float
    cpu: float


def timed(work: Callable[[], object]) -> tuple[object, Timed]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = work()
    return out, Timed(time.perf_counter() - wall, time.process_time() - cpu)


# --- datalever --------------------------------------------------------------------------------


def engine_sweep(spec: Spec, data: LabelledExamples, folder: Path) -> tuple[dict, str, Timed]:
    """Run the sweep through the engine into a new store; its values (everyone and each group)
    by scenario, the path it took, and its time. A shallow copy of the data makes the engine
    build its fold contexts afresh, as a new process would."""
    store = ResultsStore(folder / f"{time.perf_counter_ns()}.sqlite")
    report, took = timed(lambda: run_spec(spec, store, data=copy.copy(data), jobs=1))
    rows = store.results(report.run_id)
    store.engine.dispose()
    rows = rows[rows.lever != "none"]
    values: dict = {}
    for r in rows.itertuples():
        values[(r.collective, r.sample, r.fold, r.eval_group, r.metric)] = r.value
    return values, ",".join(sorted(rows.path.unique())), took


@dataclass
class Breakdown:
    """Seconds of datalever's parts, outside the engine: the fast path's preparation (per
    fold), and per scenario its fits, plain fits and judging; fits also by strike size."""

    prepare: list[float] = field(default_factory=list)
    fast: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    judge: list[float] = field(default_factory=list)
    fast_by_size: dict[float, list[float]] = field(default_factory=dict)
    plain_by_size: dict[float, list[float]] = field(default_factory=dict)


def breakdown(
    spec: Spec, data: LabelledExamples, scenarios: Scenarios, groups: list[str], into: Breakdown
) -> None:
    """Time the fast path's preparation and fits, plain fits and judging, on fold 0's
    scenarios, one at a time."""
    learner = make_learner(spec.learners[0].name)
    fold = scenarios.folds[0]
    chosen = scenarios.of_fold(0)
    sizes = [scenarios.plan[i].collective.size for i in chosen]
    deltas = [scenarios.deltas[i] for i in chosen]
    base = data.training_set(fold.train)
    judge = task_of(spec).judge(spec, data, fold)

    def fits(fit: Callable, total: list[float], by_size: dict[float, list[float]]) -> list:
        models, seconds = [], {}
        for size, delta in zip(sizes, deltas, strict=True):
            model, took = timed(lambda delta=delta: fit(delta))
            models.append(model)
            seconds.setdefault(size, []).append(took.wall)
        total.append(sum(map(sum, seconds.values())) / len(deltas))
        for size, values in seconds.items():
            by_size.setdefault(size, []).append(statistics.median(values))
        return models

    fast, took = timed(lambda: learner.fast_path(base))
    if fast is not None:
        into.prepare.append(took.wall)
        models = fits(lambda d: next(iter(fast.fit_many([d]))), into.fast, into.fast_by_size)
    plain = fits(lambda d: learner.fit(d.apply(base)), into.plain, into.plain_by_size)
    if fast is None:
        models = plain
    n = data.n_contributors
    masks = []
    for i in chosen:
        participant = np.zeros(n, dtype=bool)
        participant[scenarios.participants[i]] = True
        everyone = np.ones(n, dtype=bool)
        masks.append(
            {"everyone": everyone, "participants": participant, "non-participants": ~participant}
        )

    def judge_all() -> None:
        for model, groups_of in zip(models, masks, strict=True):
            values = judge.evaluate(model, learner)
            for g in groups:
                for v in values.values():
                    v.over(groups_of[g])

    _, took = timed(judge_all)
    into.judge.append(took.wall / len(deltas))


# --- scikit-learn -----------------------------------------------------------------------------


@dataclass
class PeerParts:
    """Seconds of scikit-learn's parts over a sweep: fitting (the training subset included),
    scoring the held-out examples, and the metrics."""

    fit: float = 0.0
    score: float = 0.0
    metrics: float = 0.0


def peer_sweep(
    name: str, data: LabelledExamples, scenarios: Scenarios, groups: list[str]
) -> tuple[dict, Timed, PeerParts]:
    """Refit scikit-learn's estimator on every scenario's training examples and compute the
    metrics with ``sklearn.metrics``; the values by scenario, the time, and its parts."""
    probabilistic = make_learner(name).probabilistic
    k = data.n_classes
    labels = np.arange(k)
    contributors = data.records["contributor"].to_numpy()
    # The positions each scenario keeps, computed outside the timing (datalever draws its own).
    keep = []
    for delta, sc in zip(scenarios.deltas, scenarios.plan, strict=True):
        mask = np.ones(len(scenarios.folds[sc.fold].train), dtype=bool)
        mask[delta.removed] = False
        keep.append(mask)
    parts = PeerParts()

    def fit(X: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None):
        started = time.perf_counter()
        estimator = peer_estimator(name)
        estimator.fit(X, y) if mask is None else estimator.fit(X[mask], y[mask])
        parts.fit += time.perf_counter() - started
        return estimator

    def scores(estimator, X: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        out = estimator.predict_proba(X) if probabilistic else estimator.decision_function(X)
        if len(estimator.classes_) < k:  # a class without training examples scores lowest
            full = np.full((len(X), k), 0.0 if probabilistic else -np.inf)
            full[:, estimator.classes_] = out
            out = full
        parts.score += time.perf_counter() - started
        return out

    def metrics(y: np.ndarray, s: np.ndarray, who: dict[str, np.ndarray]) -> dict:
        started = time.perf_counter()
        predicted = np.argmax(s, axis=1)
        out = {}
        for g, chosen in who.items():
            if not chosen.any():  # no held-out example: datalever stores no value either
                continue
            yg, pg = y[chosen], predicted[chosen]
            out[(g, "accuracy")] = accuracy_score(yg, pg)
            out[(g, "macro_f1")] = f1_score(yg, pg, average="macro")
            if probabilistic:  # datalever's definition: probabilities floored at 1e-15
                floored = np.clip(s[chosen], LOG_LOSS_FLOOR, 1.0)
                out[(g, "log_loss")] = log_loss(yg, y_proba=floored, labels=labels)
        parts.metrics += time.perf_counter() - started
        return out

    def run() -> dict:
        values = {}
        for f, fold in enumerate(scenarios.folds):
            chosen = scenarios.of_fold(f)
            if not chosen:
                continue
            X, y = data.features[fold.train], data.labels[fold.train]
            X_test, y_test = data.features[fold.test], data.labels[fold.test]
            held_by = contributors[fold.test]
            everyone = np.ones(len(y_test), dtype=bool)
            baseline = fit(X, y)
            metrics(y_test, scores(baseline, X_test), {"everyone": everyone})
            for i in chosen:
                estimator = fit(X, y, keep[i])
                who = {"everyone": everyone}
                if "participants" in groups:
                    struck = np.isin(held_by, scenarios.participants[i])
                    who |= {"participants": struck, "non-participants": ~struck}
                got = metrics(y_test, scores(estimator, X_test), who)
                sc = scenarios.plan[i]
                for (g, m), v in got.items():
                    values[(*scenario_key(sc), g, m)] = v
        return values

    with sklearn.config_context(assume_finite=True):
        values, took = timed(run)
    return values, took, parts


# --- the comparison ---------------------------------------------------------------------------


@dataclass
class Row:
    dataset: str
    learner: str
    scenarios: int
    folds: int
    path: str = ""
    ours: list[Timed] = field(default_factory=list)
    theirs: list[Timed] = field(default_factory=list)
    peer_parts: list[PeerParts] = field(default_factory=list)
    parts: Breakdown = field(default_factory=Breakdown)
    compared: int = 0
    accuracy_differs: int = 0
    f1_gap: float = 0.0
    log_loss_gap: float | None = None

    def per_second(self, side: list[Timed], cpu: bool = False) -> float:
        return statistics.median(self.scenarios / (t.cpu if cpu else t.wall) for t in side)

    @property
    def ratio(self) -> float:
        return self.per_second(self.ours) / self.per_second(self.theirs)

    @property
    def cpu_ratio(self) -> float:
        return self.per_second(self.ours, cpu=True) / self.per_second(self.theirs, cpu=True)

    @property
    def agrees(self) -> bool:
        loss_ok = self.log_loss_gap is None or self.log_loss_gap <= LOG_LOSS_TOLERANCE
        return self.accuracy_differs == 0 and self.f1_gap <= RATIO_TOLERANCE and loss_ok


def agreement(row: Row, ours: dict, theirs: dict) -> None:
    """Compare every value scikit-learn computed with the one the engine stored."""
    for key, want in theirs.items():
        gap = abs(ours[key] - want)
        row.compared += 1
        metric = key[-1]
        if metric == "accuracy":
            row.accuracy_differs += gap > RATIO_TOLERANCE
        elif metric == "macro_f1":
            row.f1_gap = max(row.f1_gap, gap)
        else:
            row.log_loss_gap = max(row.log_loss_gap or 0.0, gap)


def compare(data: LabelledExamples, learner: str, args: argparse.Namespace, folder: Path) -> Row:
    samples = args.logistic_samples if learner == "logistic" else args.samples
    spec = sweep_spec(data, learner, samples, args.folds, args.groups, args.seed)
    scenarios = Scenarios.of(spec, data)
    row = Row(data.name, learner, len(scenarios.plan), args.folds)
    if learner in CLOSED_FORM:
        # A warm-up on another seed, so lazy imports and first calls are charged to neither
        # side (not for logistic, whose fits take seconds each and dwarf first calls).
        warm = sweep_spec(data, learner, 1, 1, args.groups, args.seed + 1)
        engine_sweep(warm, data, folder)
        peer_sweep(learner, data, Scenarios.of(warm, data), args.groups)
    for repeat in range(args.repeats):
        print(f"  {data.name} {learner}: run {repeat + 1} of {args.repeats}", file=sys.stderr)
        ours, row.path, took = engine_sweep(spec, data, folder)
        row.ours.append(took)
        theirs, took, parts = peer_sweep(learner, data, scenarios, args.groups)
        row.theirs.append(took)
        row.peer_parts.append(parts)
        if repeat == 0:
            agreement(row, ours, theirs)
        if repeat == 0 or learner in CLOSED_FORM:  # logistic's plain fits take seconds
            breakdown(spec, data, scenarios, args.groups, row.parts)
    return row


def ms(values: list[float], width: int = 8) -> str:
    return f"{1e3 * statistics.median(values):{width}.2f}" if values else f"{'n/a':>{width}}"


def report(rows: list[Row], args: argparse.Namespace, store_dir: str) -> bool:
    print(
        f"\nstrikes of {', '.join(f'{100 * s:g} %' for s in SIZES)} of contributors, "
        f"{args.samples} draws per size ({args.logistic_samples} for logistic), on "
        f"{args.folds} fold(s) of a stratified 5-fold split; groups judged: "
        f"{', '.join(args.groups)}; store in {store_dir}; medians of {args.repeats} run(s); "
        "one core (BLAS and OpenMP on one thread)\n"
    )
    head = (
        f"{'dataset':<18} {'learner':<15} {'datalever path':<22} {'scen.':>5} "
        f"{'datalever sc/s':>14} {'sklearn sc/s':>12} {'ratio':>7} {'CPU-s ratio':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.dataset:<18} {r.learner:<15} {r.path:<22} {r.scenarios:>5} "
            f"{r.per_second(r.ours):>14.3g} {r.per_second(r.theirs):>12.3g} "
            f"{r.ratio:>6.1f}× {r.cpu_ratio:>10.1f}×"
        )
    print(
        "\nwhere the time goes, ms per scenario (prepare: per fold). datalever: the whole "
        "engine run;\nthe fast path's preparation, a fast-path fit, a plain fit, judging; "
        "rest = engine - prepare / scenarios\nper fold - fit - judge (drawing, the no-action "
        "and reference models, rows, storing).\nscikit-learn: the whole sweep; fitting "
        "(subset included), predicting, sklearn.metrics."
    )
    head = (
        f"{'dataset':<18} {'learner':<15} {'engine':>8} {'prepare':>8} {'fast fit':>8} "
        f"{'plain fit':>9} {'judge':>8} {'rest':>8} | {'sklearn':>8} {'fit':>8} "
        f"{'predict':>8} {'metrics':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        engine = statistics.median(t.wall for t in r.ours) / r.scenarios
        fit = statistics.median(r.parts.fast or r.parts.plain)
        prepare = statistics.median(r.parts.prepare) if r.parts.prepare else 0.0
        rest = engine - prepare * r.folds / r.scenarios - fit - statistics.median(r.parts.judge)
        peer = statistics.median(t.wall for t in r.theirs) / r.scenarios
        per = [
            [getattr(p, part) / r.scenarios for p in r.peer_parts]
            for part in ("fit", "score", "metrics")
        ]
        print(
            f"{r.dataset:<18} {r.learner:<15} {1e3 * engine:8.2f} {ms(r.parts.prepare)} "
            f"{ms(r.parts.fast)} {ms(r.parts.plain, 9)} {ms(r.parts.judge)} {1e3 * rest:8.2f} | "
            f"{1e3 * peer:8.2f} {ms(per[0])} {ms(per[1])} {ms(per[2])}"
        )
    print("\nfits alone by strike size, ms per scenario (median): fast path / plain fit")
    head = f"{'dataset':<18} {'learner':<15} " + " ".join(
        f"{f'{100 * size:g} %':>17}" for size in SIZES
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        if not r.parts.fast_by_size:
            continue
        cells = []
        for size in SIZES:
            fast, plain = r.parts.fast_by_size.get(size), r.parts.plain_by_size.get(size)
            cells.append(f"{ms(fast).strip()} / {ms(plain).strip()}" if fast else "n/a")
        print(f"{r.dataset:<18} {r.learner:<15} " + " ".join(f"{c:>17}" for c in cells))
    print("\nagreement with scikit-learn, every scenario and group of the first run")
    for r in rows:
        loss = "n/a" if r.log_loss_gap is None else f"{r.log_loss_gap:.1e}"
        print(
            f"  {r.dataset:<18} {r.learner:<15} {r.compared:>5} values: accuracy differs in "
            f"{r.accuracy_differs}, max |Δ macro-F1| {r.f1_gap:.1e}, max |Δ log-loss| {loss}"
            f"  {'ok' if r.agrees else 'FAILED'}"
        )
    return all(r.agrees for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="synthetic examples")
    parser.add_argument("--features", type=int, default=50, help="synthetic features")
    parser.add_argument("--classes", type=int, default=10, help="synthetic classes")
    parser.add_argument("--samples", type=int, default=20, help="draws per strike size")
    parser.add_argument("--logistic-samples", type=int, default=1, help="the same, for logistic")
    parser.add_argument("--folds", type=int, default=1, help="folds run, of 5 (1-5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    parser.add_argument(
        "--groups",
        default="everyone",
        help=f"groups judged: everyone, or {','.join(GROUPS)}",
    )
    parser.add_argument("--learners", default=",".join(LEARNERS), help=f"of {', '.join(LEARNERS)}")
    parser.add_argument("--datasets", default="digits,synthetic", help="digits, synthetic")
    parser.add_argument(
        "--store-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the engine's temporary SQLite stores go (default: /dev/shm, in memory)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args(argv)
    args.groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    if args.groups not in (["everyone"], list(GROUPS)):
        parser.error(f"--groups must be everyone, or {','.join(GROUPS)}")
    if not 1 <= args.folds <= 5:
        parser.error("--folds must be from 1 to 5")
    if args.quick:
        args.examples, args.samples, args.logistic_samples, args.repeats = 1_000, 1, 1, 1
    learners = [name.strip() for name in args.learners.split(",") if name.strip()]
    datasets = {
        "digits": load_digits_dataset,
        "synthetic": lambda: synthetic(args.examples, args.features, args.classes, args.seed),
    }
    rows = []
    with (
        threadpool_limits(1),
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory(dir=args.store_dir) as folder,
    ):
        # Logistic regression stops at max_iter on the synthetic data, on both sides alike.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in args.datasets.split(","):
            data = datasets[name.strip()]()
            for learner in learners:
                rows.append(compare(data, learner, args, Path(folder)))
    return 0 if report(rows, args, str(Path(folder).parent)) else 1


if __name__ == "__main__":
    sys.exit(main())
