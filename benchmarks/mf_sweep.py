"""The Data Strikes random-strike sweep with biased MF, through the engine, against Surprise.

The published sweep is 16 strike sizes (0.01 % to 99 % of users) × 250 samples × 5 folds =
20,000 fits. This script runs the same sweep through datalever's engine (the fastest exact
path, batched SGD, on every core) with ``--samples`` samples per size, and in the same run fits
Surprise's ``SVD`` on a random subset of the same scenarios' training sets. It prints the time
per fit of each, their ratio, and both projected to the full 20,000-fit sweep.

datalever's time is the whole engine run (drawing collectives, fitting, judging every
scenario, storing results) divided by the number of fits; Surprise's is its ``fit`` alone.

    python benchmarks/mf_sweep.py --samples 10 --surprise-fits 20
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


def surprise_fit_seconds(data, spec, n_fits: int, seed: int) -> list[float]:
    """Fit Surprise's SVD on ``n_fits`` of the sweep's scenarios, chosen at random."""
    import surprise

    folds = make_protocol(spec).folds(data, spec.seed)
    scenarios = [s for s in plan(spec, data.checksum()) if not s.is_baseline]
    rng = np.random.default_rng(seed)
    times = []
    for i in rng.choice(len(scenarios), size=min(n_fits, len(scenarios)), replace=False):
        sc = scenarios[i]
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
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="samples per size")
    parser.add_argument("--surprise-fits", type=int, default=20)
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
    theirs = surprise_fit_seconds(data, spec, args.surprise_fits, args.seed)
    median = float(np.median(theirs))
    print(
        f"sweep: {len(PAPER_SIZES)} sizes × {args.samples} samples × 5 folds "
        f"+ no-action = {fits} fits on movielens-100k, {args.jobs} job(s), path {paths}"
    )
    print(
        f"datalever engine: {ours_total:.1f} s in all, {ours:.4f} s per fit (fit + judge + store)"
    )
    print(
        f"Surprise SVD:     median {median:.4f} s per fit over {len(theirs)} fits "
        f"(min {min(theirs):.4f}, max {max(theirs):.4f})"
    )
    print(f"ratio: {median / ours:.1f}× faster per fit")
    print(
        f"projected full sweep ({FULL_SWEEP_FITS} fits): datalever "
        f"{FULL_SWEEP_FITS * ours / 60:.1f} min, Surprise {FULL_SWEEP_FITS * median / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
