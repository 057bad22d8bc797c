"""The Data Strikes random-strike sweep with biased MF, through the engine, against Surprise.

The published sweep is 16 strike sizes (0.01 % to 99 % of users) × 250 samples × 5 folds =
20,000 fits. This script runs the same sweep through datalever's engine (the fastest exact
path, batched SGD, on every core) with ``--samples`` samples per size, and in the same run fits
Surprise's ``SVD`` on a random subset of the same scenarios' training sets. It prints the time
per fit of each, their ratio, and both projected to the full 20,000-fit sweep. Surprise is
timed on the same number of scenarios of every size, as the sweep has.

datalever's time is the whole engine run (drawing collectives, fitting, judging every
scenario, storing results) divided by the number of scenarios (scenarios whose strike rounds to
no one reuse the fold's no-action model, as the engine does); Surprise's is its ``fit`` alone.

    python benchmarks/mf_sweep.py --samples 10 --surprise-per-size 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datalever.collectives import draw
from datalever.data.registry import load_dataset
from datalever.engine.runner import run_spec
from datalever.engine.scenario_eval import make_protocol
from datalever.scenarios import plan
from datalever.spec import spec_from_dict
from datalever.store import ResultsStore

PAPER_SIZES = [
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.99,
]
FULL_SWEEP_FITS = 16 * 250 * 5


def surprise_fit_seconds(data, spec, per_size: int, seed: int) -> dict[float, list[float]]:
    """Fit Surprise's SVD on ``per_size`` of the sweep's scenarios of every strike size (chosen
    at random); the times of each size's fits."""
    import surprise

    folds = make_protocol(spec).folds(data, spec.seed)
    scenarios = [s for s in plan(spec, data.checksum()) if not s.is_baseline]
    rng = np.random.default_rng(seed)
    times: dict[float, list[float]] = {}
    for size in PAPER_SIZES:
        of_size = [s for s in scenarios if s.collective.size == size]
        for i in rng.choice(len(of_size), size=min(per_size, len(of_size)), replace=False):
            sc = of_size[i]
            fold = folds[sc.fold]
            d = draw(sc.collective, data, sc.sample, spec.seed)
            withheld = sc.lever.withheld(
                data, d.participants, sc.collective.seed_for(spec.seed, sc.sample, stream=1)
            )
            train = sc.lever.delta(fold.train, withheld).apply(data.training_set(fold.train))
            frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
            reader = surprise.Reader(rating_scale=train.rating_scale)
            trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
            algo = surprise.SVD(random_state=0)
            started = time.perf_counter()
            algo.fit(trainset)
            times.setdefault(size, []).append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="samples per size")
    parser.add_argument(
        "--surprise-per-size", type=int, default=2, help="Surprise fits per strike size"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset("movielens-100k")
    spec = spec_from_dict(
        {
            "name": "data strikes sweep",
            "seed": args.seed,
            "data": {"dataset": "movielens-100k"},
            "protocol": {"kind": "data-strikes", "folds": 5},
            "learners": [{"name": "biased_mf"}],
            "collectives": {"sizes": PAPER_SIZES, "samples": args.samples},
            "evaluation": {"metrics": ["ndcg@10", "rmse"], "groups": ["everyone"]},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "sweep.sqlite")
        started = time.perf_counter()
        report = run_spec(spec, store, data=data, jobs=args.jobs)
        ours_total = time.perf_counter() - started
        paths = ", ".join(sorted(store.results(report.run_id)["path"].unique()))
    fits = report.n_computed
    ours = ours_total / fits
    theirs = surprise_fit_seconds(data, spec, args.surprise_per_size, args.seed)
    # The sweep has as many fits of every size, so its time per fit is the mean over sizes of
    # each size's (median) time per fit.
    per_size = {size: float(np.median(t)) for size, t in theirs.items()}
    surprise_per_fit = float(np.mean(list(per_size.values())))
    n_theirs = sum(len(t) for t in theirs.values())
    print(
        f"sweep: {len(PAPER_SIZES)} sizes × {args.samples} samples × 5 folds "
        f"+ no-action = {fits} scenarios on movielens-100k, {args.jobs} job(s), path {paths}"
    )
    print(
        f"datalever engine: {ours_total:.1f} s in all, {ours:.4f} s per scenario "
        "(fit + judge + store)"
    )
    print(
        f"Surprise SVD:     {surprise_per_fit:.4f} s per fit over the sweep's sizes "
        f"({n_theirs} fits, {args.surprise_per_size} per size; the median per size runs from "
        f"{min(per_size.values()):.4f} to {max(per_size.values()):.4f})"
    )
    print(
        f"ratio: {surprise_per_fit / ours:.1f}× faster per scenario (wall time, {args.jobs} job(s))"
    )
    print(
        f"       {surprise_per_fit / (ours * args.jobs):.1f}× per core (Surprise fits on one core)"
    )
    print(
        f"projected full sweep ({FULL_SWEEP_FITS} fits): datalever "
        f"{FULL_SWEEP_FITS * ours / 60:.1f} min, "
        f"Surprise {FULL_SWEEP_FITS * surprise_per_fit / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
