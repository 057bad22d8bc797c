"""An opt-out sweep with the small transformer language model, on a GPU and on the CPU.

Runs the same strike sweep of the standard library (sizes ``--sizes`` × ``--samples`` draws,
one holdout fold) through the engine with ``learner = "transformer"`` on ``--device`` (CUDA by
default) and, unless ``--no-cpu``, on the CPU, and prints seconds per scenario on each, their
ratio, bits per token and top-1 for everyone and for the participants, and the largest
difference between the two devices' stored values (they agree to float32 rounding, not bit for
bit). On CUDA the engine fits the scenarios in batches (the transformer's batched path); the
CPU run fits each plainly. The n-gram model's numbers on the same sweep are printed beside, for
scale.

    python benchmarks/code_transformer_gpu.py                         # on a GPU machine
    python benchmarks/code_transformer_gpu.py --device cpu --no-cpu --sizes 0.1 --samples 1 \\
        --epochs 1 --corpus small                                     # a check on any machine
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from code_sweep import write_table
from datalever.engine.runner import run_spec
from datalever.spec import spec_from_dict
from datalever.store import ResultsStore
from datalever.tasks import load_data

#: A quick check's corpus: six standard-library packages, written as code_sweep writes them.
SMALL = ("json", "email", "http", "logging", "concurrent", "wsgiref")


def sweep(args, learner: dict, data_table: dict) -> tuple[float, int, dict]:
    spec = spec_from_dict(
        {
            "name": "transformer opt-out",
            "seed": args.seed,
            "data": data_table,
            "protocol": {"kind": "holdout"},
            "learners": [learner],
            "lever": {"kind": "strike"},
            "collectives": {"sizes": args.sizes, "samples": args.samples},
            "evaluation": {
                "metrics": ["bits_per_token", "top1"],
                "groups": ["everyone", "participants"],
            },
        },
        "the benchmark",
    )
    data = load_data(spec)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "s.sqlite")
        started = time.perf_counter()
        report = run_spec(spec, store, data=data, jobs=1)
        seconds = time.perf_counter() - started
        df = store.results(report.run_id)
    values = {(r.collective, r.sample, r.eval_group, r.metric): r.value for r in df.itertuples()}
    return seconds, len(set(df["key"])), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU run")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--corpus", choices=["stdlib", "small"], default="stdlib")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus == "stdlib":
            data_table = {"dataset": "python-stdlib"}
        else:
            path = write_table(SMALL, Path(tmp) / "small.jsonl")
            data_table = {
                "dataset": str(path),
                "columns": {"contributor": "contributor", "path": "path", "text": "text"},
            }
        model = {"name": "transformer", "epochs": args.epochs, "seed": args.seed}
        runs = {args.device: sweep(args, {**model, "device": args.device}, data_table)}
        if not args.no_cpu and args.device != "cpu":
            runs["cpu"] = sweep(args, {**model, "device": "cpu"}, data_table)
        runs["n-gram (order 3)"] = sweep(args, {"name": "kneser_ney", "order": 3}, data_table)
    print(f"{'run':<18} {'scenarios':>9} {'s/scenario':>11}")
    for name, (seconds, n, _) in runs.items():
        print(f"{name:<18} {n:>9} {seconds / n:>11.3f}")
    if "cpu" in runs and args.device != "cpu":
        ratio = (runs["cpu"][0] / runs["cpu"][1]) / (runs[args.device][0] / runs[args.device][1])
        print(f"{args.device} against cpu: {ratio:.1f}× per scenario")
        a, b = runs[args.device][2], runs["cpu"][2]
        gap = max(
            abs(a[k] - b[k]) / max(abs(b[k]), 1e-12)
            for k in a
            if k in b and a[k] is not None and b[k] is not None
        )
        print(f"largest relative difference between devices: {gap:.2e}")
    for name, (_, _, values) in runs.items():
        for group in ("everyone", "participants"):
            for metric in ("bits_per_token", "top1"):
                picked = [
                    v
                    for (c, _, g, m), v in values.items()
                    if g == group and m == metric and c != "none" and v is not None
                ]
                if picked:
                    print(f"{name:<18} {group:<13} {metric:<15} {np.mean(picked):.4f}")


if __name__ == "__main__":
    main()
