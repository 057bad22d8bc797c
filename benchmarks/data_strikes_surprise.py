"""Data Strikes on MovieLens-100K: datalever's ``BiasedMF`` against Surprise's own ``SVD``.

Both learners are fitted on the same training records and judged on the same held-out records:
the strikes are drawn with datalever's collectives and strike lever, the folds come from
:class:`DataStrikesProtocol`, and both are scored by datalever's metric code. Only the learner
differs. Surprise's fitted ``SVD`` is wrapped in a :class:`Model` that scores pairs from its
``bu``/``bi``/``pu``/``qi`` arrays as ``SVD.estimate`` does (unknown users and items leave their
terms out), clipped to the rating scale as ``predict`` does; every fit checks this against
``algo.predict`` on a sample of pairs.

Timings are per plain fit, one scenario at a time, in wall time and in CPU seconds (all
threads of the process): the CPU ratio is the per-core comparison, whatever threads either
library starts. A draw that strikes nobody (size 0, or a size that rounds to no user) is fitted
once per fold for both learners and reused, so neither side is credited with free work.

Run ``python benchmarks/data_strikes_surprise.py`` (add ``--quick`` for a smoke run). The exit
status is non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict

import numpy as np
import pandas as pd
from scipy import stats
from surprise import SVD, Dataset, Reader

from datalever.collectives import Collective, draw
from datalever.data.contributions import TrainingSet
from datalever.data.registry import load_dataset
from datalever.learners import BiasedMF
from datalever.learners.base import Model
from datalever.levers import Strike
from datalever.metrics import HeldOut, evaluate_ratings, group_value, parse_metric
from datalever.protocols import DataStrikesProtocol
from datalever.tasks.recsys import tie_seed as hash_seed

DATASET = "movielens-100k"
N_SPLITS = 5
RELEVANCE_THRESHOLD = 4.0
NDCG, RMSE = parse_metric("ndcg@10"), parse_metric("rmse")
NDCG_TOLERANCE = 0.01
PREDICT_TOLERANCE = 1e-9
LEARNERS = ("datalever", "surprise")
SVD_PARAMS = dict(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=0)
TITLES = {"datalever": "datalever BiasedMF", "surprise": "Surprise SVD"}


class SurpriseModel(Model):
    """A fitted Surprise ``SVD`` scoring datalever's coded (user, item) pairs."""

    def __init__(self, algo: SVD, n_users: int, n_items: int) -> None:
        self.algo = algo
        self.n_items = n_items
        ts = algo.trainset
        # Surprise's raw ids are datalever's codes; -1 marks a code the trainset does not know.
        self.user_inner = np.full(n_users, -1, dtype=np.int64)
        self.user_inner[[ts.to_raw_uid(u) for u in ts.all_users()]] = list(ts.all_users())
        self.item_inner = np.full(n_items, -1, dtype=np.int64)
        self.item_inner[[ts.to_raw_iid(i) for i in ts.all_items()]] = list(ts.all_items())

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``SVD.estimate`` vectorised, then clipped to the rating scale."""
        a, ts = self.algo, self.algo.trainset
        u, i = self.user_inner[users], self.item_inner[items]
        known_u, known_i = u >= 0, i >= 0
        both = known_u & known_i
        est = np.full(len(u), ts.global_mean)
        est[known_u] += a.bu[u[known_u]]
        est[known_i] += a.bi[i[known_i]]
        est[both] += np.einsum("ij,ij->i", a.qi[i[both]], a.pu[u[both]])
        return np.clip(est, *ts.rating_scale)

    def predict_one_by_one(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Surprise's own ``algo.predict(uid, iid).est``, pair by pair."""
        pairs = zip(users.tolist(), items.tolist(), strict=True)
        return np.array([self.algo.predict(u, i).est for u, i in pairs])


def surprise_trainset(train: TrainingSet):
    """The training records as a Surprise trainset, in the same order."""
    df = pd.DataFrame(
        {"user": train.users.astype(np.int64), "item": train.items, "rating": train.ratings}
    )
    return Dataset.load_from_df(df, Reader(rating_scale=train.rating_scale)).build_full_trainset()


def make_svd() -> SVD:
    return SVD(**SVD_PARAMS)


class PredictCheck:
    """Compares the vectorised Surprise scores with ``algo.predict`` on sampled pairs."""

    def __init__(self) -> None:
        self.max_diff = 0.0
        self.counts: dict[str, int] = defaultdict(int)

    def run(self, model: SurpriseModel, held_out: HeldOut, rng: np.random.Generator) -> None:
        pick = rng.choice(len(held_out.users), size=min(200, len(held_out.users)), replace=False)
        users, items = [held_out.users[pick]], [held_out.items[pick]]
        # Pairs with an unknown user and/or item, from the whole code range, so every branch of
        # SVD.estimate is exercised whenever the training set leaves someone out.
        ku, uu = np.flatnonzero(model.user_inner >= 0), np.flatnonzero(model.user_inner < 0)
        ki, ui = np.flatnonzero(model.item_inner >= 0), np.flatnonzero(model.item_inner < 0)
        for us, its in ((uu, ki), (ku, ui), (uu, ui)):
            if len(us) and len(its):
                users.append(rng.choice(us, size=20))
                items.append(rng.choice(its, size=20))
        u, i = np.concatenate(users), np.concatenate(items)
        diff = np.abs(model.predict(u, i) - model.predict_one_by_one(u, i))
        self.max_diff = max(self.max_diff, float(diff.max()))
        known_u, known_i = model.user_inner[u] >= 0, model.item_inner[i] >= 0
        self.counts["known user and item"] += int((known_u & known_i).sum())
        self.counts["unknown user"] += int((~known_u & known_i).sum())
        self.counts["unknown item"] += int((known_u & ~known_i).sum())
        self.counts["both unknown"] += int((~known_u & ~known_i).sum())


def judge(model: Model, held_out: HeldOut, tie_seed: int) -> dict[str, float]:
    """nDCG@10 and RMSE over everyone (strikers stay users of the service)."""
    ev = evaluate_ratings(model, held_out, RELEVANCE_THRESHOLD, tie_seed, True)
    everyone = np.ones(held_out.n_users, dtype=bool)
    return {m.name: group_value(m, *m.per_user(ev), everyone) for m in (NDCG, RMSE)}


def mean_ci(per_sample: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % t-interval (NaN for one sample)."""
    x = np.asarray(per_sample)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    sem = x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * sem)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="0,0.1,0.3,0.5,0.9", help="strike sizes (share of users)")
    p.add_argument("--samples", type=int, default=3, help="strike draws per size")
    p.add_argument("--folds", type=int, default=5, help=f"folds run, of the {N_SPLITS}-fold split")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, draws and tie order")
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 0,0.5, 1 sample, 1 fold")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.samples, args.folds = "0,0.5", 1, 1
    try:
        args.sizes = sorted({float(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes must be comma-separated numbers, not {args.sizes!r}")
    if 0.0 not in args.sizes or len(args.sizes) < 2:
        p.error("--sizes must include 0 (the no-strike baseline) and at least one larger size")
    if not all(0 <= s < 1 for s in args.sizes):
        p.error("strike sizes must be in [0, 1)")
    if not 1 <= args.folds <= N_SPLITS:
        p.error(f"--folds must be between 1 and {N_SPLITS}")
    if args.samples < 1:
        p.error("--samples must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_dataset(DATASET)
    folds = DataStrikesProtocol(n_folds=N_SPLITS).folds(data, args.seed)[: args.folds]
    lever = Strike()
    learner = BiasedMF(n_factors=100, n_epochs=20, lr=0.005, reg=0.02, seed=0)
    print(
        f"Data Strikes on {DATASET}: {len(data)} ratings, {data.n_contributors} users, "
        f"{data.n_items} items; {N_SPLITS}-fold split, {args.folds} fold(s) run, "
        f"{args.samples} sample(s) per size, seed {args.seed}"
    )
    print(f"  datalever: {learner!r}")
    print(f"  Surprise:  SVD({', '.join(f'{k}={v!r}' for k, v in SVD_PARAMS.items())})")

    # Warm-up fits (numba compilation, imports) so they stay out of the timings.
    tiny = data.training_set(np.arange(1000))
    learner.fit(tiny)
    make_svd().fit(surprise_trainset(tiny))

    held = {f.index: data.training_set(f.test) for f in folds}
    held = {k: HeldOut(t.users, t.items, t.ratings, t.n_users) for k, t in held.items()}
    # values[learner][size][metric] is a (samples, folds) array.
    values = {
        name: {
            s: defaultdict(lambda: np.full((args.samples, args.folds), np.nan)) for s in args.sizes
        }
        for name in LEARNERS
    }
    # seconds[size][learner or "build"]: one entry per fit actually run.
    seconds = {s: defaultdict(list) for s in args.sizes}
    n_strikers: dict[float, int] = {}
    cache: dict[tuple[int, bytes], dict[str, dict[str, float]]] = {}
    check = PredictCheck()
    check_rng = np.random.default_rng([args.seed, 0xC4EC])
    started = time.perf_counter()

    for size in args.sizes:
        collective = Collective("random", size=size)
        for sample in range(args.samples):
            d = draw(collective, data, sample, args.seed)
            n_strikers[size] = len(d.participants)
            rng = collective.seed_for(args.seed, sample, stream=1)
            for j, fold in enumerate(folds):
                key = (fold.index, d.participants.tobytes())
                if key not in cache:  # identical draws (every no-strike sample) are fitted once
                    delta = lever.delta(data, d.participants, rng, fold.train)
                    train = delta.apply(data.training_set(fold.train))
                    tie_seed = hash_seed(args.seed, fold.index)
                    cache[key], took = fit_and_judge(
                        learner, train, held[fold.index], tie_seed, check, check_rng
                    )
                    for what, t in took.items():
                        seconds[size][what].append(t)
                for name in LEARNERS:
                    for metric, v in cache[key][name].items():
                        values[name][size][metric][sample, j] = v
            print(
                f"  [{time.perf_counter() - started:6.1f} s] size {size:g} sample {sample} done",
                file=sys.stderr,
                flush=True,
            )

    report(args, values, n_strikers, seconds)
    return checks(args, values, check)


def fit_and_judge(learner, train, held_out, tie_seed, check, rng):
    """Fit both learners on ``train`` and score both on ``held_out``; also the fit times."""
    c0, t0 = time.process_time(), time.perf_counter()
    model = learner.fit(train)
    c1, t1 = time.process_time(), time.perf_counter()
    trainset = surprise_trainset(train)
    t2 = time.perf_counter()
    c2 = time.process_time()
    algo = make_svd().fit(trainset)
    c3, t3 = time.process_time(), time.perf_counter()
    peer = SurpriseModel(algo, train.n_users, train.n_items)
    check.run(peer, held_out, rng)
    scores = {
        "datalever": judge(model, held_out, tie_seed),
        "surprise": judge(peer, held_out, tie_seed),
    }
    took = {"datalever": t1 - t0, "build": t2 - t1, "surprise": t3 - t2}
    return scores, took | {"datalever cpu": c1 - c0, "surprise cpu": c3 - c2}


def fmt(mean: float, half: float) -> str:
    return f"{mean:.4f} ± {'n/a   ' if half != half else f'{half:.4f}'}"


def report(args, values, n_strikers, seconds) -> None:
    """Print the curves and the timings."""
    print(
        f"\nmean over samples × folds, ± half-width of the 95 % t-interval over "
        f"{args.samples} sample(s)"
    )
    print(f"{'size':>5} {'strikers':>8}  {'nDCG@10 (everyone)':^35}  {'RMSE':^35}".rstrip())
    names = f"{TITLES['datalever']:>17} {TITLES['surprise']:>17}"
    print(f"{'':14}  {names}  {names}")
    for size in args.sizes:
        c = [
            fmt(*mean_ci(values[name][size][metric].mean(axis=1)))
            for metric in (NDCG.name, RMSE.name)
            for name in LEARNERS
        ]
        line = f"{size:>5g} {n_strikers[size]:>8}  {c[0]:>17} {c[1]:>17}  {c[2]:>17} {c[3]:>17}"
        print(line.rstrip())
    print("  (size 0: every sample is the same empty draw, so its interval is 0)")

    print("\nmedian time per fit (s): wall time, and CPU seconds of all threads (per core)")
    print(
        f"  {'':<12}{'datalever':>10}{'Surprise':>10}{'Surprise/datalever':>20}{'fits':>6}"
        f"{'CPU: datalever':>16}{'Surprise':>10}{'ratio':>8}"
    )
    for size in args.sizes:
        if not seconds[size]["datalever"]:
            print(f"  size {size:g}: strikes nobody; reuses the no-strike fit on both sides")
            continue
        print(timing_row(f"size {size:g}", seconds[size]))
    overall = defaultdict(list)
    for by_size in seconds.values():
        for what, ts in by_size.items():
            overall[what].extend(ts)
    print(timing_row("all sizes", overall))
    cpu_dl, cpu_sp = (
        statistics.fmean(overall["datalever cpu"]),
        statistics.fmean(overall["surprise cpu"]),
    )
    print(
        f"  mean per fit: datalever {statistics.fmean(overall['datalever']):.3f} s, "
        f"Surprise {statistics.fmean(overall['surprise']):.3f} s; CPU seconds: datalever "
        f"{cpu_dl:.3f}, Surprise {cpu_sp:.3f} ({cpu_sp / cpu_dl:.2f}× per core)\n"
        f"  building each Surprise trainset (not counted above): median "
        f"{statistics.median(overall['build']):.3f} s"
    )


def timing_row(label: str, seconds: dict[str, list[float]]) -> str:
    """Median fit times of both learners and their ratio, wall and CPU, as one table row."""
    dl, sp = statistics.median(seconds["datalever"]), statistics.median(seconds["surprise"])
    cdl = statistics.median(seconds["datalever cpu"])
    csp = statistics.median(seconds["surprise cpu"])
    n = len(seconds["datalever"])
    return (
        f"  {label:<12}{dl:>10.3f}{sp:>10.3f}{sp / dl:>19.2f}×{n:>6}"
        f"{cdl:>16.3f}{csp:>10.3f}{csp / cdl:>7.2f}×"
    )


def checks(args, values, check: PredictCheck) -> int:
    """Print PASS/FAIL lines; return the exit status."""

    def ndcg(name: str, size: float) -> float:
        return float(values[name][size][NDCG.name].mean())

    top = max(args.sizes)
    gap = abs(ndcg("datalever", 0.0) - ndcg("surprise", 0.0))
    results = [(gap < NDCG_TOLERANCE, f"no-strike nDCG@10: |datalever − Surprise| = {gap:.4f}")]
    for name in LEARNERS:
        lo, hi = ndcg(name, top), ndcg(name, 0.0)
        text = f"{TITLES[name]} nDCG@10 falls: {lo:.4f} at size {top:g} vs {hi:.4f} at 0"
        results.append((lo < hi, text))
    cases = ", ".join(f"{n} {k}" for k, n in check.counts.items())
    text = f"vectorised Surprise scores = algo.predict: max |diff| {check.max_diff:.1e} ({cases})"
    results.append((check.max_diff < PREDICT_TOLERANCE, text))
    print(
        f"\nchecks (nDCG@10 tolerance {NDCG_TOLERANCE}, prediction tolerance {PREDICT_TOLERANCE})"
    )
    for ok, text in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
