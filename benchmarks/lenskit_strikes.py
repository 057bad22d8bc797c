"""Strikes on MovieLens-100K under the per-user holdout: datalever against LensKit.

datalever's ``ease``, ``item_knn_centered`` (LensKit's own item-KNN rule, configured alike) and
``item_knn`` (Surprise's rule) run through the engine (``run_spec`` on a spec built here,
a temporary SQLite store, ``path="auto"``, so whatever exact fast paths the learners have are
used). The peer is LensKit 2025.8.1's ``EASEScorer`` and ``ItemKNNScorer``, retrained per
scenario in LensKit's own top-N pipeline (``topn_pipeline`` + ``lenskit.batch.recommend``).

Both tools see identical records: the split is :class:`HoldoutProtocol` (test_fraction 0.2,
per user), the strikes are drawn with datalever's ``Collective``/``draw`` and ``Strike()``
exactly as the engine draws them, and LensKit is handed each scenario's training records with
the full user and item vocabularies. Both are scored by datalever's metric code: LensKit's
top-10 lists are wrapped in a :class:`Model` and go through the engine's ``TopNTask`` and
``ndcg@10``.
As a cross-check, LensKit's own ``NDCG`` (with the log2(rank + 1) discount datalever uses) is
computed on the same lists and must agree.

Each scenario's training records are also fitted directly with datalever's learner (outside
the timings): its nDCG must equal what the engine stored (so both tools saw the same draws),
and its top-10 lists are compared with LensKit's, list by list.

For EASE a second peer is timed: what a LensKit user would write for a sweep, LensKit's EASE
weights built with numpy exactly as ``EASEScorer.train`` builds them (binary user × item
matrix, Gram matrix plus λ on the diagonal, inverted as positive definite in float32,
``B = -P / diag(P)`` with a zero diagonal), then every test user's scores with one ``X @ B``
product and a top-10 by ``argpartition``. Its lists are compared with datalever's too.

Timings are wall time and CPU seconds (every thread of the process, and the engine's worker
processes when ``--jobs`` > 1): both tools may use every core (datalever's numba kernels and
BLAS, LensKit's torch and BLAS), so the ratio of CPU seconds is the per-core comparison.
No default scenario has an empty delta (the smallest size, 5 %, strikes 47 users); a size given
with ``--sizes`` that rounds to no user is left out, so none is credited as free work.

Needs LensKit, so it runs in its own venv (see ``benchmarks/README.md``)::

    .venv-bench/bin/python benchmarks/lenskit_strikes.py [--quick]

The exit status is non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg as spla
from lenskit import batch
from lenskit.data import ItemList, from_interactions_df
from lenskit.knn import EASEScorer, ItemKNNScorer
from lenskit.metrics import NDCG
from lenskit.metrics.ranking import LogRankWeight
from lenskit.pipeline import topn_pipeline

from datalever.collectives import Collective, draw
from datalever.data.contributions import Contributions, TrainingSet
from datalever.data.registry import load_dataset
from datalever.engine import runner
from datalever.learners import make_learner
from datalever.learners.base import Model
from datalever.levers import Strike
from datalever.metrics import HeldOut, TopNTask, group_value, parse_metric
from datalever.protocols import HoldoutProtocol
from datalever.spec import (
    CollectivesSpec,
    DataSpec,
    EvaluationSpec,
    LearnerSpec,
    ProtocolSpec,
    Spec,
)
from datalever.store import ResultsStore
from datalever.tasks.recsys import tie_seed as hash_seed
from mf_sweep import cpu_seconds  # CPU seconds of this process and all its workers

DATASET = "movielens-100k"
TEST_FRACTION = 0.2
LIST_LENGTH = 10
NDCG_METRIC = parse_metric(f"ndcg@{LIST_LENGTH}")
LEARNERS = ("ease", "item_knn_centered", "item_knn")
TITLES = {"ease": "EASE", "item_knn": "item-KNN", "item_knn_centered": "centred item-KNN"}
#: Checks: share of identical EASE top-10 lists; engine vs direct fit; our metric vs LensKit's.
EASE_IDENTICAL_MIN = 0.99
EASE_NDCG_TOLERANCE = 0.002
#: The issue's bound for learners configured alike: nDCG@10 per scenario within 0.005.
ALIKE_NDCG_TOLERANCE = 0.005
SAME_DRAW_TOLERANCE = 1e-9
METRIC_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- configuration
def datalever_params(learner: str, args) -> dict:
    if learner == "ease":
        return {"regularization": args.regularization}
    if learner == "item_knn_centered":  # LensKit's own rule: configured alike
        return {"k": args.knn_k, "min_k": 1, "min_sim": 1e-6}
    return {"k": args.knn_k, "min_k": 1, "similarity": "cosine"}


def lenskit_scorer(learner: str, args):
    if learner == "ease":
        return EASEScorer(regularization=args.regularization)
    return ItemKNNScorer(
        max_nbrs=args.knn_k, min_nbrs=1, min_sim=1e-6, save_nbrs=None, feedback="explicit"
    )


def describe(learner: str, args) -> tuple[str, str]:
    params = ", ".join(f"{k}={v!r}" for k, v in datalever_params(learner, args).items())
    cfg = lenskit_scorer(learner, args).config
    peer = cfg.model_dump() if hasattr(cfg, "model_dump") else vars(cfg)
    peer.pop("block_size", None)
    lk = ", ".join(f"{k}={v!r}" for k, v in peer.items())
    name = "EASEScorer" if learner == "ease" else "ItemKNNScorer"  # both KNNs face LensKit's
    return f"{learner}({params})", f"{name}({lk})"


# --------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Case:
    """One scenario: a strike size and sample, as the engine plans it (size 0 is one case)."""

    size: float
    sample: int

    @property
    def collective(self) -> Collective:
        return Collective("none") if self.size == 0 else Collective("random", size=self.size)


def cases(sizes: list[float], samples: int) -> list[Case]:
    return [Case(0.0, 0)] + [Case(s, k) for s in sizes if s > 0 for k in range(samples)]


def scenario_training(data: Contributions, fold, case: Case, seed: int):
    """The scenario's training records and participants, drawn exactly as the engine does
    (``FoldContext.run``): same collective, sample, seed and strike lever."""
    base = data.training_set(fold.train)
    d = draw(case.collective, data, case.sample, seed)
    if len(d.participants) == 0:
        return base, d.participants
    rng = case.collective.seed_for(seed, case.sample, stream=1)
    return Strike().delta(data, d.participants, rng, fold.train).apply(base), d.participants


# --------------------------------------------------------------------------- datalever side
def make_spec(learner: str, args) -> Spec:
    return Spec(
        name=f"lenskit-bench-{learner}",
        seed=args.seed,
        data=DataSpec(dataset=DATASET),
        protocol=ProtocolSpec(kind="holdout", test_fraction=TEST_FRACTION, list_length=LIST_LENGTH),
        learners=[LearnerSpec(name=learner, **datalever_params(learner, args))],
        collectives=CollectivesSpec(sizes=args.sizes, samples=args.samples),
        evaluation=EvaluationSpec(
            metrics=[NDCG_METRIC.name], groups=["everyone", "non-participants"]
        ),
    )


@dataclass
class EngineRun:
    seconds: float  # run_spec wall time, data loading excluded
    n_scenarios: int
    path: str
    cpu: float  # CPU seconds of the run (all threads and workers)
    # Each struck scenario's own recorded time (fit + judge), without the fold's set-up.
    scenario_seconds: list[float] = field(default_factory=list)
    ndcg: dict[Case, float] = field(default_factory=dict)  # everyone
    ndcg_non: dict[Case, float] = field(default_factory=dict)  # non-participants


def run_engine(learner: str, data: Contributions, args) -> EngineRun:
    spec = make_spec(learner, args)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "bench.sqlite")
        c0, t0 = cpu_seconds(), time.perf_counter()
        report = runner.run_spec(spec, store, data=data, jobs=args.jobs, path="auto")
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        table = store.results(report.run_id)
        store.engine.dispose()
    table = table[table["metric"] == NDCG_METRIC.name]
    out = EngineRun(seconds, report.n_computed, ",".join(sorted(set(table["path"]))), cpu)
    struck = table[(table["lever"] != "none") & (table["eval_group"] == "everyone")]
    out.scenario_seconds = struck["seconds"].tolist()
    for row in table.itertuples():
        case = Case(0.0, 0) if row.lever == "none" else Case(float(row.size), int(row.sample))
        if row.eval_group == "everyone":
            out.ndcg[case] = row.value
        elif row.eval_group == "non-participants":
            out.ndcg_non[case] = row.value
    return out


# --------------------------------------------------------------------------- LensKit side
class ListModel(Model):
    """Given top-N lists as a model: listed items score by rank, everything else -inf, so
    ``TopNTask`` recovers exactly these lists (shorter ones stay shorter)."""

    def __init__(self, lists: dict[int, np.ndarray], n_items: int) -> None:
        self.lists = lists
        self.n_items = n_items

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError("a list model only ranks")

    def score_users(self, users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), self.n_items), -np.inf)
        for row, u in enumerate(np.asarray(users).tolist()):
            items = self.lists.get(u)
            if items is not None and len(items):
                out[row, items] = np.arange(len(items), 0, -1, dtype=float)
        return out


@dataclass
class PeerRun:
    lists: dict[int, np.ndarray]
    build: float
    train: float
    recommend: float
    cpu: float = 0.0

    @property
    def seconds(self) -> float:
        return self.build + self.train + self.recommend


def run_lenskit(learner: str, train: TrainingSet, test_users: np.ndarray, args) -> PeerRun:
    """Build LensKit's dataset, train its top-N pipeline and recommend for every test user."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    frame = pd.DataFrame(
        {
            "user_id": train.users.astype(np.int64),
            "item_id": train.items.astype(np.int64),
            "rating": train.ratings,
        }
    )
    # Full vocabularies: struck users stay known (with an empty history) and items that lost
    # all their records stay candidates, as in datalever.
    ds = from_interactions_df(frame, users=np.arange(train.n_users), items=np.arange(train.n_items))
    t1 = time.perf_counter()
    pipe = topn_pipeline(lenskit_scorer(learner, args), n=LIST_LENGTH)
    pipe.train(ds)
    t2 = time.perf_counter()
    recs = batch.recommend(pipe, test_users, n=LIST_LENGTH, n_jobs=args.lk_jobs)
    t3 = time.perf_counter()
    with warnings.catch_warnings():  # struck users get empty lists (no history): expected
        warnings.filterwarnings("ignore", "item list collection has empty lists")
        df = recs.to_df()
    lists: dict[int, np.ndarray] = {}
    if len(df):
        df = df.sort_values(["user_id", "rank"])
        for user, group in df.groupby("user_id", sort=False):
            lists[int(user)] = group["item_id"].to_numpy(np.int64)
    return PeerRun(lists, t1 - t0, t2 - t1, t3 - t2, cpu_seconds() - c0)


@dataclass
class MatrixRun:
    lists: dict[int, np.ndarray]
    train: float
    score: float
    cpu: float

    @property
    def seconds(self) -> float:
        return self.train + self.score


def run_ease_matrix(train: TrainingSet, test_users: np.ndarray, regularization: float):
    """LensKit's EASE as a sweep would use it: the weights ``EASEScorer.train`` builds (binary
    interactions, ``XᵀX + λI`` inverted as positive definite in float32 as its SciPy solver
    does, ``B = -P / diag(P)``, zero diagonal), then one ``X @ B`` for every test user's
    scores, training items excluded, top 10. Users without a history get no list, as in
    LensKit (which cannot score them)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    x = np.zeros((train.n_users, train.n_items), dtype=np.float32)
    x[train.users, train.items] = 1.0
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += regularization
    weights = spla.inv(gram, assume_a="pos", overwrite_a=True)
    weights /= -np.diag(weights).reshape(1, -1)
    np.fill_diagonal(weights, 0.0)
    t1 = time.perf_counter()
    users = test_users[x[test_users].any(axis=1)]
    known = x[users]
    scores = known @ weights
    scores[known > 0] = -np.inf
    top = np.argpartition(-scores, LIST_LENGTH, axis=1)[:, :LIST_LENGTH]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    t2 = time.perf_counter()
    lists = {int(u): top[row].astype(np.int64) for row, u in enumerate(users.tolist())}
    return MatrixRun(lists, t1 - t0, t2 - t1, cpu_seconds() - c0)


def lenskit_ndcg(lists: dict[int, np.ndarray], held: HeldOut) -> float:
    """LensKit's own NDCG@10 with the log2(rank + 1) discount, mean over test users."""
    metric = NDCG(n=LIST_LENGTH, weight=LogRankWeight(offset=1))
    order = np.argsort(held.users, kind="stable")
    users, items = held.users[order], held.items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    values = []
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(users)], strict=True):
        recs = ItemList(item_ids=lists.get(int(users[a]), np.zeros(0, np.int64)), ordered=True)
        values.append(metric.measure_list(recs, ItemList(item_ids=items[a:b])))
    return float(np.mean(values))


# --------------------------------------------------------------------------- shared judging
def judge(held: HeldOut, base: TrainingSet, fold_index: int, seed: int) -> TopNTask:
    """The engine's top-N judging of this fold (the same tie order)."""
    return TopNTask(held, base.users, base.items, LIST_LENGTH, tie_seed=hash_seed(seed, fold_index))


def top_lists(model: Model, task: TopNTask) -> dict[int, np.ndarray]:
    """datalever's top-k lists, as the engine computes them (base-known items excluded)."""
    users, items, _ = task.top_lists(model)
    bounds = np.flatnonzero(np.diff(users)) + 1
    return {
        int(users[a]): items[a:b]
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(users)], strict=True)
        if b > a
    }


def ndcg_of(model: Model, task: TopNTask, members: np.ndarray) -> float:
    ev = task.evaluate(model)
    return group_value(NDCG_METRIC, *NDCG_METRIC.per_user(ev), members)


@dataclass
class Row:
    case: Case
    strikers: int
    ours: float
    peer: float
    ours_non: float
    peer_non: float
    direct: float
    peer_lk_metric: float
    identical: float  # share of identical lists (same items, same order), users with history
    same_set: float
    peer_run: PeerRun
    matrix_run: MatrixRun | None = None
    matrix_identical: float = float("nan")


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="0,0.05,0.1,0.2,0.3,0.5", help="strike sizes (users)")
    p.add_argument("--samples", type=int, default=5, help="strike draws per size")
    p.add_argument("--learners", default=",".join(LEARNERS), help="ease,item_knn_centered,item_knn")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the draws")
    p.add_argument("--regularization", type=float, default=500.0, help="EASE λ (both tools)")
    p.add_argument("--knn-k", type=int, default=20, help="item-KNN neighbours (both tools)")
    p.add_argument("--lk-jobs", type=int, default=1, help="LensKit batch.recommend n_jobs")
    p.add_argument("--jobs", type=int, default=1, help="datalever engine worker processes")
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 0,0.3, 1 sample")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.samples = "0,0.3", 1
    try:
        args.sizes = sorted({float(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes must be comma-separated numbers, not {args.sizes!r}")
    if 0.0 not in args.sizes or len(args.sizes) < 2:
        p.error("--sizes must include 0 (no strike) and at least one larger size")
    if not all(0 <= s < 1 for s in args.sizes):
        p.error("strike sizes must be in [0, 1)")
    if args.samples < 1:
        p.error("--samples must be at least 1")
    args.learners = [x.strip() for x in args.learners.split(",") if x.strip()]
    bad = [x for x in args.learners if x not in LEARNERS]
    if bad or not args.learners:
        p.error(f"--learners must be among {', '.join(LEARNERS)}")
    return args


def warm_up_datalever(learner: str, data: Contributions, base: TrainingSet, args) -> None:
    """Compile datalever's numba kernels outside the timings: the learner's own, and the
    engine's (fast-path scoring, top-N selection) through a small run on another seed, so the
    timed run builds its fold context afresh."""
    small = base.subset(np.arange(min(2000, len(base))))
    users = np.unique(small.users)[:5].astype(np.int64)
    make_learner(learner, datalever_params(learner, args)).fit(small).score_users(users)
    quick = {"sizes": [0, 0.01], "samples": 1, "jobs": 1, "seed": args.seed + 1}
    run_engine(learner, data, argparse.Namespace(**{**vars(args), **quick}))


def warm_up_lenskit(learner: str, base: TrainingSet, args) -> None:
    """Import LensKit's lazily loaded parts outside the timings. Runs after datalever's timed
    run: torch's idle worker threads would otherwise spin beside it on a 2-core machine."""
    small = base.subset(np.arange(min(2000, len(base))))
    run_lenskit(learner, small, np.unique(small.users)[:5].astype(np.int64), args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    data = load_dataset(DATASET)
    # A size that rounds to no user would be the no-action model again in the engine, free,
    # against a full retraining by LensKit: left out rather than counted as work.
    nobody = [s for s in args.sizes if s > 0 and round(s * data.n_contributors) == 0]
    if nobody:
        shown = ", ".join(f"{s:g}" for s in nobody)
        print(f"left out: sizes {shown} strike nobody among {data.n_contributors} users")
        args.sizes = [s for s in args.sizes if s not in nobody]
        if len(args.sizes) < 2:
            print("no size strikes anyone: nothing to compare", file=sys.stderr)
            return 2
    fold = HoldoutProtocol(test_fraction=TEST_FRACTION).folds(data, args.seed)[0]
    base = data.training_set(fold.train)
    t_ho = data.training_set(fold.test)
    held = HeldOut(t_ho.users, t_ho.items, t_ho.ratings, t_ho.n_users)
    test_users = np.unique(held.users).astype(np.int64)
    task = judge(held, base, fold.index, args.seed)
    load_s = time.perf_counter() - t0
    print(
        f"Strikes on {DATASET} under the per-user holdout: {len(data)} ratings, "
        f"{data.n_contributors} users, {data.n_items} items; test_fraction {TEST_FRACTION}, "
        f"top-{LIST_LENGTH} over every item the user has no training record for; "
        f"{len(base)} training / {len(held.users)} held-out records; "
        f"sizes {', '.join(f'{s:g}' for s in args.sizes)} × {args.samples} sample(s); "
        f"seed {args.seed} (data loading {load_s:.1f} s, not timed below)"
    )
    for learner in args.learners:
        ours, peer = describe(learner, args)
        print(f"  {TITLES[learner]:<9} datalever {ours}\n  {'':<9} LensKit   {peer}")

    everyone = np.ones(data.n_contributors, dtype=bool)
    all_rows: dict[str, list[Row]] = {}
    engines: dict[str, EngineRun] = {}
    started = time.perf_counter()
    for learner in args.learners:
        warm_up_datalever(learner, data, base, args)
        engine = run_engine(learner, data, args)
        engines[learner] = engine
        print(
            f"  [{time.perf_counter() - started:6.1f} s] datalever {learner}: "
            f"{engine.n_scenarios} scenarios in {engine.seconds:.1f} s (path {engine.path})",
            file=sys.stderr,
            flush=True,
        )
        warm_up_lenskit(learner, base, args)
        rows = []
        direct_learner = make_learner(learner, datalever_params(learner, args))
        for case in cases(args.sizes, args.samples):
            train, participants = scenario_training(data, fold, case, args.seed)
            peer_run = run_lenskit(learner, train, test_users, args)
            non = np.ones(data.n_contributors, dtype=bool)
            non[participants] = False
            lk_model = ListModel(peer_run.lists, data.n_items)
            model = direct_learner.fit(train)
            ours_lists = top_lists(model, task)
            with_history = np.bincount(train.users, minlength=data.n_contributors) > 0
            compared = [u for u in test_users.tolist() if with_history[u]]
            empty = np.zeros(0, np.int64)
            same = [
                np.array_equal(ours_lists.get(u, empty), peer_run.lists.get(u, empty))
                for u in compared
            ]
            same_set = [
                set(ours_lists.get(u, empty).tolist()) == set(peer_run.lists.get(u, empty).tolist())
                for u in compared
            ]
            matrix_run = matrix_same = None
            if learner == "ease":
                matrix_run = run_ease_matrix(train, test_users, args.regularization)
                matrix_same = float(
                    np.mean(
                        [
                            np.array_equal(ours_lists.get(u, empty), matrix_run.lists.get(u, empty))
                            for u in compared
                        ]
                    )
                )
            rows.append(
                Row(
                    case=case,
                    strikers=len(participants),
                    ours=engine.ndcg[case],
                    peer=ndcg_of(lk_model, task, everyone),
                    ours_non=engine.ndcg_non.get(case, engine.ndcg[case]),
                    peer_non=ndcg_of(lk_model, task, non),
                    direct=ndcg_of(model, task, everyone),
                    peer_lk_metric=lenskit_ndcg(peer_run.lists, held),
                    identical=float(np.mean(same)),
                    same_set=float(np.mean(same_set)),
                    peer_run=peer_run,
                    matrix_run=matrix_run,
                    matrix_identical=float("nan") if matrix_same is None else matrix_same,
                )
            )
        all_rows[learner] = rows
        print(
            f"  [{time.perf_counter() - started:6.1f} s] LensKit {learner}: {len(rows)} scenarios",
            file=sys.stderr,
            flush=True,
        )

    for learner in args.learners:
        report(learner, all_rows[learner], engines[learner])
    return checks(args, all_rows)


def report(learner: str, rows: list[Row], engine: EngineRun) -> None:
    print(f"\n{TITLES[learner]}: nDCG@{LIST_LENGTH} per scenario (datalever's metric code)")
    print(
        f"{'size':>5} {'smp':>3} {'strikers':>8} {'datalever':>9} {'LensKit':>8} {'|diff|':>7}"
        f"  {'non-strikers: dl':>16} {'LK':>7} {'|diff|':>7}  {'same list':>9} {'same set':>8}"
        f"  {'t LK (s)':>8}"
    )
    for r in rows:
        print(
            f"{r.case.size:>5g} {r.case.sample:>3} {r.strikers:>8} {r.ours:>9.4f} {r.peer:>8.4f}"
            f" {abs(r.ours - r.peer):>7.4f}  {r.ours_non:>16.4f} {r.peer_non:>7.4f}"
            f" {abs(r.ours_non - r.peer_non):>7.4f}  {r.identical:>9.1%} {r.same_set:>8.1%}"
            f"  {r.peer_run.seconds:>8.3f}"
        )
    by_size = defaultdict(list)
    for r in rows:
        by_size[r.case.size].append(r)
    print(f"\n{TITLES[learner]}: mean over samples")
    print(f"{'size':>5} {'datalever':>9} {'change':>8} {'LensKit':>8} {'change':>8}")
    base_dl, base_lk = by_size[0.0][0].ours, by_size[0.0][0].peer
    for size, rs in sorted(by_size.items()):
        dl = statistics.fmean(r.ours for r in rs)
        lk = statistics.fmean(r.peer for r in rs)
        print(
            f"{size:>5g} {dl:>9.4f} {dl / base_dl - 1:>+8.2%} {lk:>8.4f} {lk / base_lk - 1:>+8.2%}"
        )
    t_dl = engine.seconds / engine.n_scenarios
    t_lk = [r.peer_run.seconds for r in rows]
    print(
        f"\n{TITLES[learner]} timings per scenario (data loading excluded):\n"
        f"  datalever engine (path {engine.path}): {engine.seconds:.2f} s for "
        f"{engine.n_scenarios} scenarios = {t_dl:.3f} s/scenario (run_spec wall time, incl. "
        f"the per-fold set-up: base and reference fits and their evaluation)\n"
        f"  LensKit: median {statistics.median(t_lk):.3f} s/scenario = dataset build "
        f"{statistics.median(r.peer_run.build for r in rows):.3f} + train "
        f"{statistics.median(r.peer_run.train for r in rows):.3f} + recommend "
        f"{statistics.median(r.peer_run.recommend for r in rows):.3f}\n"
        f"  median time ratio LensKit / datalever: "
        f"{statistics.median(t / t_dl for t in t_lk):.2f}×\n"
        f"  without the fold's set-up: datalever's median struck scenario took "
        f"{statistics.median(engine.scenario_seconds):.4f} s (its recorded fit + judge time), "
        f"ratio {statistics.median(t_lk) / statistics.median(engine.scenario_seconds):.1f}×"
    )
    cpu_dl = engine.cpu / engine.n_scenarios
    cpu_lk = statistics.median(r.peer_run.cpu for r in rows)
    print(
        f"  CPU seconds per scenario (per-core comparison; all threads of each tool): "
        f"datalever {cpu_dl:.3f} (whole run), LensKit pipeline {cpu_lk:.3f} (median); "
        f"ratio {cpu_lk / cpu_dl:.1f}×"
    )
    matrix = [r.matrix_run for r in rows if r.matrix_run is not None]
    if matrix:
        t_mx = statistics.median(m.seconds for m in matrix)
        cpu_mx = statistics.median(m.cpu for m in matrix)
        struck = statistics.median(engine.scenario_seconds)
        print(
            f"  LensKit's EASE weights + one X @ B product (numpy, what a sweep would use): "
            f"median {t_mx:.3f} s/scenario = weights "
            f"{statistics.median(m.train for m in matrix):.3f} + scores and top-"
            f"{LIST_LENGTH} {statistics.median(m.score for m in matrix):.3f}; "
            f"{cpu_mx:.3f} CPU s\n"
            f"    ratio against datalever's whole run: {t_mx / t_dl:.1f}× wall, "
            f"{cpu_mx / cpu_dl:.1f}× CPU seconds; against its median struck scenario "
            f"(without the fold's set-up): {t_mx / struck:.1f}× wall\n"
            f"    identical top-{LIST_LENGTH} lists with datalever's: "
            f"{statistics.fmean(r.matrix_identical for r in rows):.2%} "
            f"(min {min(r.matrix_identical for r in rows):.2%})"
        )
    diffs = [abs(r.ours - r.peer) for r in rows]
    diffs_non = [abs(r.ours_non - r.peer_non) for r in rows]
    print(
        f"  nDCG@{LIST_LENGTH} agreement: max |diff| everyone {max(diffs):.4f}, "
        f"non-strikers {max(diffs_non):.4f}; identical top-{LIST_LENGTH} lists (users with a "
        f"training history): {statistics.fmean(r.identical for r in rows):.2%} "
        f"(min {min(r.identical for r in rows):.2%}); same sets "
        f"{statistics.fmean(r.same_set for r in rows):.2%}"
    )


def checks(args, all_rows: dict[str, list[Row]]) -> int:
    results = []
    for learner, rows in all_rows.items():
        gap = max(abs(r.direct - r.ours) for r in rows)
        results.append(
            (
                gap < SAME_DRAW_TOLERANCE,
                f"{TITLES[learner]}: direct fit on this script's draws = engine nDCG "
                f"(max |diff| {gap:.1e}): both tools saw the same training records",
            )
        )
        gap = max(abs(r.peer - r.peer_lk_metric) for r in rows)
        results.append(
            (
                gap < METRIC_TOLERANCE,
                f"{TITLES[learner]}: datalever's ndcg@10 on LensKit's lists = LensKit's NDCG "
                f"(log2(rank+1)) (max |diff| {gap:.1e})",
            )
        )
        top = max(args.sizes)
        lo = statistics.fmean(r.peer for r in rows if r.case.size == top)
        hi = rows[0].peer
        results.append(
            (lo < hi, f"LensKit {TITLES[learner]} nDCG falls: {lo:.4f} at {top:g} vs {hi:.4f}")
        )
    if "ease" in all_rows:
        rows = all_rows["ease"]
        share = min(r.identical for r in rows)
        results.append(
            (
                share >= EASE_IDENTICAL_MIN,
                f"EASE (equal λ): identical top-{LIST_LENGTH} lists in every scenario "
                f">= {EASE_IDENTICAL_MIN:.0%} (min {share:.2%})",
            )
        )
        gap = max(abs(r.ours_non - r.peer_non) for r in rows)
        results.append(
            (
                gap < EASE_NDCG_TOLERANCE,
                f"EASE: non-strikers' nDCG@{LIST_LENGTH} agrees within {EASE_NDCG_TOLERANCE} "
                f"(max |diff| {gap:.4f})",
            )
        )
    if "item_knn_centered" in all_rows:
        rows = all_rows["item_knn_centered"]
        gap = max(abs(r.ours - r.peer) for r in rows)
        results.append(
            (
                gap < ALIKE_NDCG_TOLERANCE,
                f"centred item-KNN (configured alike): nDCG@{LIST_LENGTH} per scenario agrees "
                f"within {ALIKE_NDCG_TOLERANCE} (max |diff| {gap:.4f})",
            )
        )
    print("\nchecks")
    for ok, text in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
