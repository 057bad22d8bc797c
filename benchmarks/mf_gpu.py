"""The Data Strikes sweep with biased MF on the torch backend (a GPU) against the CPU kernel.

Runs the same sweep (16 strike sizes × ``--samples`` samples × ``--folds`` folds of
MovieLens-100K, Surprise's SVD defaults) through the engine twice in one run: with
``backend = "numba"`` (the CPU kernel, ``--jobs`` worker processes) and with
``backend = "torch"`` on ``--device`` (default: CUDA when torch sees it, else the CPU). It prints
each path's time per fit, their ratio, each projected to the full 20,000-fit sweep, and the
largest difference between the two paths in any scenario's nDCG@10 or RMSE (they agree to
float32 rounding, not bit for bit). As in ``mf_sweep.py``, sizes that round to no user (no fit
on either path) are left out of the sweep and of the projection.

    python benchmarks/mf_gpu.py --samples 250            # the full sweep, on a GPU machine
    python benchmarks/mf_gpu.py --samples 1 --folds 1 --device cpu   # a check on any machine
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from datalever.data.registry import load_dataset
from datalever.engine.runner import run_spec
from datalever.learners.base import Delta
from datalever.learners.mf import BiasedMF
from datalever.learners.mf_torch import gpu_present
from datalever.spec import spec_from_dict
from datalever.store import ResultsStore
from mf_sweep import FOLDS, PAPER_SAMPLES, sizes_reaching_someone


def sweep_spec(sizes: list[float], samples: int, folds: int, seed: int, learner: dict):
    return spec_from_dict(
        {
            "name": "data strikes sweep",
            "seed": seed,
            "data": {"dataset": "movielens-100k"},
            "protocol": {"kind": "data-strikes", "folds": FOLDS, "run_folds": folds},
            "learners": [{"name": "biased_mf", **learner}],
            "collectives": {"sizes": sizes, "samples": samples},
            "evaluation": {"metrics": ["ndcg@10", "rmse"], "groups": ["everyone"]},
        }
    )


def timed_sweep(data, spec, jobs: int):
    """Run the sweep into a fresh store: (seconds, fits, per-scenario values)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "sweep.sqlite")
        started = time.perf_counter()
        report = run_spec(spec, store, data=data, jobs=jobs)
        seconds = time.perf_counter() - started
        df = store.results(report.run_id)
    values = df.set_index(["collective", "sample", "fold", "metric"])["value"].sort_index()
    return seconds, report.n_computed, values, sorted(df["path"].unique())


def warm_up(learner: BiasedMF, data) -> None:
    """Compile the numba kernels and start the torch device outside the timed runs."""
    train = data.training_set(np.arange(0, len(data.records), 50))
    list(learner.fast_path(train).fit_many([Delta(np.zeros(0, dtype=np.int64))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="samples per size")
    parser.add_argument("--folds", type=int, default=5, help="folds run (of 5)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if seen)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="CPU path's jobs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = args.device or ("cuda" if gpu_present() else "cpu")

    data = load_dataset("movielens-100k")
    sizes, _ = sizes_reaching_someone(data.n_contributors)
    full = len(sizes) * PAPER_SAMPLES * FOLDS
    torch_params = {"backend": "torch", "device": device}
    warm_up(BiasedMF(backend="numba"), data)
    warm_up(BiasedMF(**torch_params), data)
    cpu_s, fits, cpu_values, cpu_paths = timed_sweep(
        data,
        sweep_spec(sizes, args.samples, args.folds, args.seed, {"backend": "numba"}),
        args.jobs,
    )
    gpu_s, _, gpu_values, gpu_paths = timed_sweep(
        data, sweep_spec(sizes, args.samples, args.folds, args.seed, torch_params), 1
    )
    diff = (cpu_values - gpu_values).abs()
    print(
        f"sweep: {len(sizes)} sizes × {args.samples} samples × {args.folds} folds "
        f"+ no-action = {fits} fits on movielens-100k"
    )
    for name, seconds, paths in (
        (f"CPU kernel ({args.jobs} job(s))", cpu_s, cpu_paths),
        (f"torch on {device}", gpu_s, gpu_paths),
    ):
        print(
            f"{name:<24} {seconds:8.1f} s, {seconds / fits:.4f} s per fit, full sweep "
            f"({full} fits) {full * seconds / fits / 60:.1f} min (path {', '.join(paths)})"
        )
    print(f"ratio: torch on {device} is {cpu_s / gpu_s:.2f}× the CPU kernel's speed")
    for metric in ("ndcg@10", "rmse"):
        worst = diff.xs(metric, level="metric").max()
        print(f"largest difference between the paths in a scenario's {metric}: {worst:.2e}")


if __name__ == "__main__":
    main()
