"""The Data Strikes random-strike sweep with biased MF, through the engine, against Surprise.

The published sweep is 16 strike sizes (0.01 % to 99 % of users) × 250 samples × 5 folds =
20,000 fits. This script runs the same sweep through datalever's engine (the fastest exact
path, batched SGD, on every core) with ``--samples`` samples per size, and in the same run fits
Surprise's ``SVD`` on a random subset of the same scenarios' training sets. It prints the time
per fit of each, their ratio, and both projected to the full 20,000-fit sweep. Surprise is
timed on the same number of scenarios of every size, as the sweep has.

datalever's time is the whole engine run (drawing collectives, fitting, judging every
scenario, storing results) divided by the number of scenarios; Surprise's is its ``fit`` alone.

Two things keep the comparison honest:

* **Nobody strikes, nothing is fitted.** On MovieLens-100K (943 users) the paper's two smallest
  sizes, 0.01 % and 0.05 %, round to no user: the engine reuses the fold's no-action model for
  them at no cost, while a peer would fit them. Counting them would credit datalever with free
  work, so sizes that round to nobody are left out of the sweep on both sides (and out of the
  projection), and the script says which.
* **Per core.** The engine runs on every core (worker processes, or numba's threads with one
  job); Surprise fits on one. Beside the wall-time ratio the script prints the ratio per core
  (our wall time × the cores the run used, against Surprise's time on one core) and the ratio
  of CPU seconds (this process and all its workers, read from /proc; Surprise's from
  ``time.process_time``), which other load on the machine disturbs least.

    python benchmarks/mf_sweep.py --samples 10 --surprise-per-size 2
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datalever.collectives import draw
from datalever.data.registry import load_dataset
from datalever.engine.runner import run_spec
from datalever.engine.scenario_eval import spec_folds
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
PAPER_SAMPLES, FOLDS = 250, 5


def _proc_times(pid: int | str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children) from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[1] is the parent pid; [11:15] are utime, stime, cutime, cstime.
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks


def cpu_seconds() -> float:
    """CPU seconds of this process, every live descendant, and every reaped one (all threads).

    Worker pools started from a fork server are grandchildren, which ``getrusage`` never
    counts while this process lives, so the process tree is read from /proc (Linux); elsewhere
    ``getrusage`` of this process and its reaped children."""
    if not Path("/proc/self/stat").exists():
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    me = os.getpid()
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (got := _proc_times(entry)) is not None:
            parents[int(entry)], seconds[int(entry)] = got
    total = 0.0
    for pid, cpu in seconds.items():
        node = pid
        while node not in (me, 0, 1) and node in parents:
            node = parents[node]
        if node == me:
            total += cpu
    return total


def cores_used(jobs: int) -> int:
    """Cores a run occupies: one per worker process, or every core for one job (the compiled
    SGD kernel runs on numba's threads, one per core)."""
    cores = os.cpu_count() or 1
    return cores if jobs == 1 else min(jobs, cores)


def sizes_reaching_someone(n_users: int) -> tuple[list[float], list[float]]:
    """The paper's sizes whose strike reaches at least one user, and those that round to none
    (as ``draw`` rounds: ``round(size * n_users)``)."""
    kept = [s for s in PAPER_SIZES if round(s * n_users) > 0]
    return kept, [s for s in PAPER_SIZES if s not in kept]


def surprise_fit_seconds(
    data, spec, per_size: int, seed: int
) -> tuple[dict[float, list[float]], dict[float, list[float]]]:
    """Fit Surprise's SVD on ``per_size`` of the sweep's scenarios of every strike size (chosen
    at random); the wall times and the CPU seconds of each size's fits."""
    import surprise

    folds = spec_folds(spec, data)
    scenarios = [s for s in plan(spec, data.checksum()) if not s.is_baseline]
    rng = np.random.default_rng(seed)
    times: dict[float, list[float]] = {}
    cpu: dict[float, list[float]] = {}
    for size in spec.collectives.sizes:
        of_size = [s for s in scenarios if s.collective.size == size]
        for i in rng.choice(len(of_size), size=min(per_size, len(of_size)), replace=False):
            sc = of_size[i]
            fold = folds[sc.fold]
            d = draw(sc.collective, data, sc.sample, spec.seed)
            rng = sc.collective.seed_for(spec.seed, sc.sample, stream=1)
            delta = sc.lever.delta(data, d.participants, rng, fold.train)
            train = delta.apply(data.training_set(fold.train))
            frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
            reader = surprise.Reader(rating_scale=train.rating_scale)
            trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
            algo = surprise.SVD(random_state=0)
            c0, started = time.process_time(), time.perf_counter()
            algo.fit(trainset)
            times.setdefault(size, []).append(time.perf_counter() - started)
            cpu.setdefault(size, []).append(time.process_time() - c0)
    return times, cpu


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
    sizes, nobody = sizes_reaching_someone(data.n_contributors)
    spec = spec_from_dict(
        {
            "name": "data strikes sweep",
            "seed": args.seed,
            "data": {"dataset": "movielens-100k"},
            "protocol": {"kind": "data-strikes", "folds": FOLDS},
            "learners": [{"name": "biased_mf"}],
            "collectives": {"sizes": sizes, "samples": args.samples},
            "evaluation": {"metrics": ["ndcg@10", "rmse"], "groups": ["everyone"]},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "sweep.sqlite")
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        report = run_spec(spec, store, data=data, jobs=args.jobs)
        ours_total = time.perf_counter() - started
        ours_cpu = cpu_seconds() - cpu_before
        paths = ", ".join(sorted(store.results(report.run_id)["path"].unique()))
    fits = report.n_computed
    ours = ours_total / fits
    cores = cores_used(args.jobs)
    theirs, theirs_cpu = surprise_fit_seconds(data, spec, args.surprise_per_size, args.seed)
    # The sweep has as many fits of every size, so its time per fit is the mean over sizes of
    # each size's (median) time per fit.
    per_size = {size: float(np.median(t)) for size, t in theirs.items()}
    surprise_per_fit = float(np.mean(list(per_size.values())))
    surprise_cpu = float(np.mean([np.median(t) for t in theirs_cpu.values()]))
    n_theirs = sum(len(t) for t in theirs.values())
    print(
        f"sweep: {len(sizes)} sizes × {args.samples} samples × {FOLDS} folds "
        f"+ no-action = {fits} scenarios on movielens-100k, {args.jobs} job(s) on {cores} "
        f"core(s), path {paths}"
    )
    if nobody:
        shown = ", ".join(f"{100 * s:g} %" for s in nobody)
        print(
            f"left out on both sides: {shown} of {data.n_contributors} users round to nobody (the "
            "engine would reuse the no-action model; a peer would fit them)"
        )
    print(
        f"datalever engine: {ours_total:.1f} s in all, {ours:.4f} s per scenario "
        f"(fit + judge + store); {ours_cpu / fits:.4f} CPU s per scenario"
    )
    print(
        f"Surprise SVD:     {surprise_per_fit:.4f} s per fit on one core over the sweep's sizes "
        f"({n_theirs} fits, {args.surprise_per_size} per size; the median per size runs from "
        f"{min(per_size.values()):.4f} to {max(per_size.values()):.4f}); "
        f"{surprise_cpu:.4f} CPU s per fit"
    )
    print(f"ratio, wall time ({cores} cores against 1): {surprise_per_fit / ours:.1f}×")
    print(
        f"ratio per core (our wall × {cores} cores against Surprise on 1): "
        f"{surprise_per_fit / (ours * cores):.1f}×"
    )
    print(
        f"ratio of CPU seconds per scenario (per core, robust to other load on the machine): "
        f"{surprise_cpu / (ours_cpu / fits):.1f}×"
    )
    full = len(sizes) * PAPER_SAMPLES * FOLDS
    print(
        f"projected full sweep ({len(sizes)} sizes × {PAPER_SAMPLES} samples × {FOLDS} folds = "
        f"{full} fits): datalever {full * ours / 60:.1f} min on {cores} core(s), "
        f"Surprise {full * surprise_per_fit / 3600:.1f} h on one"
    )


if __name__ == "__main__":
    main()
