"""Throughput of the Ray executor against the local one, by number of workers on this machine.

On synthetic MovieLens-like data (:func:`datalever.data.synthetic.synthetic_interactions`;
MovieLens-25M's size and shape by default: 25M records, 162,541 users, 59,047 items), one
random data-strike sweep (Data Strikes protocol, fold 0 of 5) runs, for each worker count, on:

* the local executor (``jobs`` worker processes fed the data once by pickling, or this process
  for one job), and
* the Ray executor on a Ray instance started on this machine with that many CPUs (the data
  goes into the object store once; workers map it from shared memory).

Each run writes into a new SQLite store; the two stores must hold the same numbers (checked).
It prints scenarios per second (``run_spec``'s own time: the data's transfer, every fold set-up
and every scenario; Ray's start-up is timed apart), the Ray / local ratio, and each worker
process's peak resident memory (``VmHWM``; for Ray workers it includes the pages of the shared
object-store copy they touched, shown apart as ``shared``)::

    python benchmarks/ray_scale.py                          # 25M records, 1 and 2 workers
    python benchmarks/ray_scale.py --records 5e6 --workers 1,2 --samples 3
    python benchmarks/ray_scale.py --address HEAD:6379 --records 1e6   # an existing cluster

With ``--address`` the Ray side runs once on that cluster (all its CPUs), beside the local
executor with ``--workers``' largest count.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from datalever.data.synthetic import synthetic_interactions
from datalever.engine.executor import Executor
from datalever.engine.ray_executor import RayExecutor
from datalever.engine.runner import run_spec
from datalever.spec import spec_from_dict
from datalever.store import ResultsStore

#: MovieLens-25M: records, users, items.
ML25M = (25_000_095, 162_541, 59_047)
GIB = 1024**3


def shape_for(n_records: int) -> tuple[int, int]:
    """Users and items for a record count, scaled from MovieLens-25M's shape."""
    f = n_records / ML25M[0]
    return max(50, round(ML25M[1] * f)), max(50, round(ML25M[2] * f**0.45))


def _status(pid: int) -> dict[str, int]:
    """A process's memory figures from /proc (bytes); empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssShmem"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def _children(root: int) -> list[int]:
    """Every process below ``root``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(text[text.rindex(")") + 2 :].split()[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for pid in parents.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ray_workers() -> list[int]:
    """Ray's worker processes under this one (titled ``ray::<task>`` or ``ray::IDLE``)."""
    agents = (b"ray::DashboardAgent", b"ray::RuntimeEnvAgent")
    return [
        p
        for p in _children(os.getpid())
        if _cmdline(p).startswith(b"ray::") and not _cmdline(p).startswith(agents)
    ]


def _values(store: ResultsStore, run_id: str) -> pd.DataFrame:
    df = store.results(run_id)
    cols = ["key", "eval_group", "metric", "value", "baseline", "reference"]
    return df.sort_values(cols[:3]).reset_index(drop=True)[cols]


def _spec(args: argparse.Namespace) -> object:
    return spec_from_dict(
        {
            "name": "ray scale",
            "seed": args.seed,
            "data": {"dataset": f"synthetic-{args.records}"},
            "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
            "learners": [{"name": name} for name in args.learners.split(",")],
            "collectives": {
                "sizes": [float(s) for s in args.sizes.split(",")],
                "samples": args.samples,
            },
            "evaluation": {"metrics": args.metrics.split(","), "groups": ["everyone"]},
        }
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def _timed_runs(specs: list, executor, store: ResultsStore) -> list[dict]:
    """Each spec in turn on one executor: the first pays the set-up (the data reaching the
    workers, the folds, every worker's fold context: split and no-action fits), the next ones
    find it done (their collectives differ, so their scenarios are new)."""
    out = []
    for spec in specs:
        report = run_spec(spec, store, executor=executor)
        out.append({"report": report, "values": _values(store, report.run_id)})
    return out


def run_local(specs: list, data, jobs: int, tmp: Path) -> dict:
    """The local executor with ``jobs`` workers; workers' peak memory read before they exit."""
    store = ResultsStore(tmp / f"local-{jobs}.sqlite")
    with Executor(data, jobs) as executor:
        runs = _timed_runs(specs, executor, store)
        pool = executor._pool
        pids = list((getattr(pool, "_processes", None) or {}).keys()) if pool else []
        workers = [_status(p) for p in pids]
    return {
        "executor": "local",
        "workers": jobs,
        "runs": runs,
        "rss": [w.get("VmHWM", 0) for w in workers],
        "shared": [w.get("RssShmem", 0) for w in workers],
        "startup": 0.0,
    }


def run_ray(specs: list, data, workers: int | None, address: str | None, tmp: Path) -> dict:
    """The Ray executor on a Ray instance started here with ``workers`` CPUs (or a cluster)."""
    store = ResultsStore(tmp / f"ray-{workers}.sqlite")
    started = time.perf_counter()
    with RayExecutor(data, address, num_cpus=workers) as executor:
        jobs = executor.jobs
        startup = time.perf_counter() - started
        runs = _timed_runs(specs, executor, store)
        stats = [_status(p) for p in _ray_workers()]
    return {
        "executor": "ray",
        "workers": jobs,
        "runs": runs,
        "rss": [s.get("VmHWM", 0) for s in stats],
        "shared": [s.get("RssShmem", 0) for s in stats],
        "startup": startup,
    }


def _rate(run: dict) -> float:
    return run["report"].n_computed / run["report"].seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=float, default=ML25M[0], help="synthetic records")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--learners", default="item_mean", help="learners, comma-separated")
    parser.add_argument("--sizes", default="0,0.01,0.05,0.1,0.3", help="strike sizes")
    parser.add_argument("--samples", type=int, default=4, help="samples per size")
    parser.add_argument("--metrics", default="rmse,ndcg@10", help="metrics, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--address", default=None, help="an existing Ray cluster (HOST:PORT)")
    args = parser.parse_args(argv)
    args.records = int(args.records)
    counts = [int(w) for w in args.workers.split(",")]
    users, items = shape_for(args.records)

    t0 = time.perf_counter()
    data = synthetic_interactions(args.records, users, items, seed=args.seed)
    print(
        f"data: {len(data):,} synthetic records, {users:,} users, {items:,} items "
        f"({time.perf_counter() - t0:.1f} s to draw); learners {args.learners}; sizes "
        f"{args.sizes} × {args.samples} samples; fold 0 of 5; metrics {args.metrics}",
        flush=True,
    )
    cold = _spec(args)
    sizes = [float(x) for x in args.sizes.split(",") if float(x) > 0]
    warm = cold.model_copy(deep=True)
    # Other collectives (half-way sizes), the same data, folds and learners.
    warm.collectives.sizes = sorted({round(min(0.99, 1.5 * x), 4) for x in sizes})
    specs = [cold, warm]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        plan = [(k, None) for k in counts] if args.address is None else [(max(counts), "x")]
        for k, on_cluster in plan:
            local = run_local(specs, data, k, Path(tmp))
            remote = run_ray(specs, data, None if on_cluster else k, args.address, Path(tmp))
            for a, b in zip(local["runs"], remote["runs"], strict=True):
                pd.testing.assert_frame_equal(a["values"], b["values"])
            for r in (local, remote):
                rows.append(r)
                cold_run, warm_run = r["runs"]
                print(
                    f"{r['executor']:>5} {r['workers']} worker(s): cold "
                    f"{cold_run['report'].n_computed} scenarios in "
                    f"{cold_run['report'].seconds:.1f} s, warm "
                    f"{warm_run['report'].n_computed} in {warm_run['report'].seconds:.1f} s"
                    + (f" (+{r['startup']:.1f} s to start Ray)" if r["startup"] else ""),
                    flush=True,
                )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print()
    print(
        "executor  workers  cold: n   s    scen/s  ray/local   warm: n   s    scen/s  "
        "ray/local  worker peak RSS MiB (shared)"
    )
    by = {(r["executor"], r["workers"]): r for r in rows}
    for i, r in enumerate(rows):
        cells = []
        for j, run in enumerate(r["runs"]):
            rep, ratio = run["report"], ""
            if r["executor"] == "ray":
                other = by.get(("local", r["workers"])) or rows[i - 1]
                ratio = f"{_rate(run) / _rate(other['runs'][j]):.2f}"
            cells.append(f"{rep.n_computed:>7} {rep.seconds:>5.1f} {_rate(run):>8.2f} {ratio:>9}")
        rss = ", ".join(
            f"{_mib(a)} ({_mib(b)})" for a, b in zip(r["rss"], r["shared"], strict=True)
        )
        print(
            f"{r['executor']:>8}  {r['workers']:>7}  {cells[0]}  {cells[1]}  "
            f"{rss or 'in this process'}"
        )
    print(f"this process's peak RSS: {_mib(peak)} MiB (data drawn here, local one-job runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
