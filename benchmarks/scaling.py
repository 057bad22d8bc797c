"""How the cost of a strike scenario grows with data size and with the size of the collective.

On synthetic MovieLens-like data (:func:`datalever.data.synthetic.synthetic_interactions`) of
1M records (6,040 users × 3,706 items, as MovieLens-1M) and 10M records (69,878 × 10,677, as
MovieLens-10M), for each learner it times, on fold 0 of the Data Strikes 5-fold split:

* ``setup``: preparing the learner's exact fast path on the fold's base training set
  (``Learner.fast_path(base)``, the statistics a fast path computes once per fold, and the
  no-action model through it, as the engine fits it first), or nothing
  when the learner has none;
* ``plain``: one plain fit of the whole base training set (what every scenario costs without a
  fast path: the reference for the speed-up; its prediction is timed apart);
* per collective size (random strikes of 0.1 %, 1 %, 10 % of users, ``--samples`` draws each),
  the time per scenario to fit through ``fit_scenarios`` (the fast path when the learner has
  one, else plain fits: whatever exists when this runs, the engine's own choice; all draws of
  a size go in one batch, and the batch's total time is divided by its size), and the median
  time to predict a fixed sample of 20,000 held-out pairs with each fitted model (so that a
  path that defers work to prediction is still charged for it).

Speed-ups are given twice: in wall time, and in CPU seconds of the process (all its threads,
``time.process_time``), which is the per-core figure: a plain fit and a fast path may keep a
different number of cores busy (numba's parallel kernels, BLAS). A draw that strikes nobody
(a size that rounds to no user) has an empty delta, for which a fast path hands back the base
model for free; such draws are left out of the timings (a size with no one striking in any
draw is reported as such, with no speed-up).

Each (data size, learner) piece runs in a fresh child process, so its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: data generation, split, the plain fit, then,
as in the engine, the fast path's setup and the whole sweep) is its own; the check is that
every piece on 10M records stays under ``--max-gib`` (8 GiB). Pieces can be run one at a time::

    python benchmarks/scaling.py                                   # 1M and 10M, every learner
    python benchmarks/scaling.py --records 1e6                     # 1M only
    python benchmarks/scaling.py --records 1e7 --learners item_mean,ease

The exit status is non-zero when a piece fails, runs out of time, or exceeds the memory limit.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

LEARNERS = ("item_mean", "ease", "item_knn", "biased_mf")
#: MovieLens-like shapes: records → (users, items).
SHAPES = {1_000_000: (6_040, 3_706), 10_000_000: (69_878, 10_677)}
PREDICT_PAIRS = 20_000
GIB = 1024**3


def shape_for(n_records: int) -> tuple[int, int]:
    """Users and items for a record count: the MovieLens shape, else scaled from ML-1M's."""
    if n_records in SHAPES:
        return SHAPES[n_records]
    f = n_records / 1_000_000
    return max(50, round(6_040 * f)), max(50, round(3_706 * f**0.45))


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------- child process
def run_piece(n_records: int, learner_name: str, fractions: list[float], samples: int, seed: int):
    """One (data size, learner) piece; returns a JSON-able dict of timings and memory."""
    from datalever.collectives import Collective, draw
    from datalever.data.synthetic import synthetic_interactions
    from datalever.learners import make_learner
    from datalever.learners.base import Delta, fit_scenarios
    from datalever.levers import Strike
    from datalever.protocols import DataStrikesProtocol

    n_users, n_items = shape_for(n_records)
    out: dict = {"records": n_records, "users": n_users, "items": n_items, "learner": learner_name}
    t0 = time.perf_counter()
    data = synthetic_interactions(n_records, n_users, n_items, seed=seed)
    out["generate_s"] = time.perf_counter() - t0
    fold = DataStrikesProtocol(n_folds=5).folds(data, seed)[0]
    base = data.training_set(fold.train)
    rng = np.random.default_rng([seed, 0x5CA1])
    pick = rng.choice(fold.test, size=min(PREDICT_PAIRS, len(fold.test)), replace=False)
    test = data.training_set(pick)
    out["data_peak_bytes"] = peak_rss()

    learner = make_learner(learner_name)
    # Warm-up on a small piece (numba compilation, lazy imports) outside the timings.
    small = base.subset(np.arange(min(5_000, len(base))))
    warm = learner.fast_path(small)
    list(fit_scenarios(learner, small, [Delta(np.arange(10))], warm))[0].predict(
        test.users[:10], test.items[:10]
    )
    learner.fit(small).predict(test.users[:10], test.items[:10])
    # The small piece keeps the data's shape, so its fast path holds full-size statistics
    # (item-KNN: three n_items² matrices): dropped before anything is measured.
    del warm
    gc.collect()

    # As the engine does (FoldContext.build): the plain base model is fitted, used and dropped
    # before the fast path is prepared, so the two are never in memory together.
    c0, t0 = time.process_time(), time.perf_counter()
    plain = learner.fit(base)
    t1 = time.perf_counter()
    plain.predict(test.users, test.items)
    out["plain_s"] = t1 - t0
    out["plain_predict_s"] = time.perf_counter() - t1
    out["plain_cpu_s"] = time.process_time() - c0
    del plain
    out["plain_peak_bytes"] = peak_rss()
    t0 = time.perf_counter()
    fast = learner.fast_path(base)
    if fast is not None:  # the no-action model, as the engine fits it first (and paths may
        # fill their caches on first use)
        list(fit_scenarios(learner, base, [Delta(np.zeros(0, dtype=np.int64))], fast))
    out["setup_s"] = time.perf_counter() - t0
    out["path"] = fast.name if fast is not None else "plain"
    out["setup_peak_bytes"] = peak_rss()

    lever = Strike()
    rows = []
    for fraction in fractions:
        collective = Collective("random", size=fraction)
        deltas, strikers = [], []
        for sample in range(samples):
            d = draw(collective, data, sample, seed)
            if len(d.participants) == 0:  # an empty delta: the base model, for free
                continue
            rng = collective.seed_for(seed, sample, stream=1)
            deltas.append(lever.delta(data, d.participants, rng, fold.train))
            strikers.append(len(d.participants))
        if not deltas:
            rows.append({"fraction": fraction, "strikers": 0, "nobody": True})
            continue
        fit_s, predict_s = [], []
        models = fit_scenarios(learner, base, deltas, fast)
        c_start = time.process_time()
        t0 = time.perf_counter()
        for model in models:
            t1 = time.perf_counter()
            fit_s.append(t1 - t0)
            scores = model.predict(test.users, test.items)
            assert np.all(np.isfinite(scores))
            t0 = time.perf_counter()
            predict_s.append(t0 - t1)
        cpu_s = time.process_time() - c_start
        rows.append(
            {
                "fraction": fraction,
                "strikers": int(statistics.median(strikers)),
                "draws": len(deltas),
                "removed": int(statistics.median(len(d.removed) for d in deltas)),
                # CPU seconds per scenario, fit and predict together (all threads).
                "cpu_s": cpu_s / len(deltas),
                # A batched path fits the whole batch before its first model: per-scenario
                # cost is the batch's total over its size, not a median.
                "fit_s": sum(fit_s) / len(fit_s),
                "first_model_s": fit_s[0],
                "predict_s": statistics.median(predict_s),
            }
        )
    out["rows"] = rows
    out["peak_bytes"] = peak_rss()
    return out


# --------------------------------------------------------------------------- parent process
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default="1e6,1e7", help="data sizes, e.g. 1e6,1e7")
    p.add_argument("--learners", default=",".join(LEARNERS), help=", ".join(LEARNERS))
    p.add_argument("--collectives", default="0.001,0.01,0.1", help="strike sizes, shares of users")
    p.add_argument("--samples", type=int, default=3, help="strike draws per size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-gib", type=float, default=8.0, help="peak memory limit checked at 10M")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per piece")
    p.add_argument("--json", help="also write every piece's result to this JSON file")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one piece, print JSON
    args = p.parse_args(argv)
    try:
        args.records = [int(float(x)) for x in args.records.split(",") if x.strip()]
        args.collectives = [float(x) for x in args.collectives.split(",") if x.strip()]
    except ValueError:
        p.error("--records and --collectives take comma-separated numbers")
    args.learners = [x.strip() for x in args.learners.split(",") if x.strip()]
    unknown = [x for x in args.learners if x not in LEARNERS]
    if unknown:
        p.error(f"unknown learner(s) {', '.join(unknown)}; use {', '.join(LEARNERS)}")
    if not all(0 < c < 1 for c in args.collectives):
        p.error("--collectives must be shares of users in (0, 1)")
    return args


def spawn(n_records: int, learner: str, args) -> dict:
    job = {
        "records": n_records,
        "learner": learner,
        "fractions": args.collectives,
        "samples": args.samples,
        "seed": args.seed,
    }
    cmd = [sys.executable, __file__, "--worker", json.dumps(job)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"records": n_records, "learner": learner, "error": f"over {args.timeout:g} s"}
    wall = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"records": n_records, "learner": learner, "error": tail}
    out = json.loads(lines[-1])
    out["wall_s"] = wall
    return out


def print_header() -> None:
    print(
        f"{'records':>8} {'users':>6} {'items':>6} {'learner':<10} {'path':<22}"
        f" {'setup s':>8} {'plain s':>8} {'strike':>7} {'strikers':>8} {'removed':>8}"
        f" {'fit s/sc':>9} {'speed-up':>8} {'per core':>8} {'pred s':>7} {'peak GiB':>8}"
    )


def print_piece(r: dict) -> None:
    if "error" in r:
        print(f"{r['records']:>8.0e} {'':>6} {'':>6} {r['learner']:<10} FAILED: {r['error']}")
        return
    for j, row in enumerate(r["rows"]):
        head = (
            f"{r['records']:>8.0e} {r['users']:>6} {r['items']:>6} {r['learner']:<10}"
            f" {r['path'][:22]:<22} {r['setup_s']:>8.3f} {r['plain_s']:>8.3f}"
            if j == 0
            else f"{'':>8} {'':>6} {'':>6} {'':<10} {'':<22} {'':>8} {'':>8}"
        )
        peak = f"{r['peak_bytes'] / GIB:>8.2f}" if j == 0 else f"{'':>8}"
        if row.get("nobody"):
            print(f"{head} {row['fraction']:>7.1%} strikes nobody in any draw: not timed {peak}")
            continue
        # Fit and prediction together, so work a path defers to prediction is counted.
        fast = row["fit_s"] + row["predict_s"]
        plain = r["plain_s"] + r["plain_predict_s"]
        speed = plain / fast if fast > 0 else float("inf")
        per_core = r["plain_cpu_s"] / row["cpu_s"] if row["cpu_s"] > 0 else float("inf")
        print(
            f"{head} {row['fraction']:>7.1%} {row['strikers']:>8} {row['removed']:>8}"
            f" {row['fit_s']:>9.3f} {speed:>7.1f}× {per_core:>7.1f}× {row['predict_s']:>7.3f}"
            f" {peak}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(
            json.dumps(
                run_piece(
                    job["records"], job["learner"], job["fractions"], job["samples"], job["seed"]
                )
            )
        )
        return 0
    print(
        f"Scaling on synthetic MovieLens-like data, Data Strikes fold 0 (80 % training), "
        f"random strikes of {', '.join(f'{c:.1%}' for c in args.collectives)} of users, "
        f"{args.samples} draw(s) each; every (size, learner) piece in its own process"
    )
    print(
        "  setup: Learner.fast_path(base) and the no-action model through it; "
        "plain: one plain fit of the base; "
        "fit s/sc: seconds per scenario to fit through fit_scenarios (fast path if any; "
        "batch total / batch size); speed-up: (plain fit + predict) / (fit + predict), wall "
        "time; per core: the same in CPU seconds of all threads; "
        "pred s: median seconds to predict "
        f"{PREDICT_PAIRS:,} held-out pairs with one scenario's model (plain: the base "
        "model's); peak: the piece's max RSS (data generation included)\n"
    )
    print_header()
    results = []
    for n_records in args.records:
        for learner in args.learners:
            r = spawn(n_records, learner, args)
            results.append(r)
            print_piece(r)
            sys.stdout.flush()
    print()
    for r in results:
        if "error" not in r:
            print(
                f"  {r['records']:.0e} {r['learner']}: data generation {r['generate_s']:.1f} s "
                f"(peak {r['data_peak_bytes'] / GIB:.2f} GiB with the split), peak after the "
                f"plain fit {r['plain_peak_bytes'] / GIB:.2f} GiB, after the setup "
                f"{r['setup_peak_bytes'] / GIB:.2f} GiB, plain predict "
                f"{r['plain_predict_s']:.3f} s, piece wall time {r['wall_s']:.1f} s"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    failed = [r for r in results if "error" in r]
    big = [r for r in results if "error" not in r and r["records"] >= 10_000_000]
    over = [r for r in big if r["peak_bytes"] > args.max_gib * GIB]
    print("\nchecks")
    print(f"  {'PASS' if not failed else 'FAIL'}  every piece ran ({len(failed)} failed)")
    if big:
        worst = max(r["peak_bytes"] for r in big) / GIB
        print(
            f"  {'PASS' if not over else 'FAIL'}  every 10M-record piece peaks under "
            f"{args.max_gib:g} GiB (highest {worst:.2f} GiB: "
            f"{max(big, key=lambda r: r['peak_bytes'])['learner']})"
        )
    return 1 if failed or over else 0


if __name__ == "__main__":
    sys.exit(main())
