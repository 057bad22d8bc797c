"""Run a spec: plan its scenarios, skip those already stored, run the rest in batches (in this
process or a pool of worker processes) and store each result as it finishes."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from datalever.collectives import group_members
from datalever.core.learner import Learner
from datalever.core.resources import memory_limit
from datalever.core.task import Dataset
from datalever.engine.executor import Executor
from datalever.errors import DataleverError
from datalever.levers import make_lever
from datalever.scenarios import Scenario, plan
from datalever.spec import Spec
from datalever.store import ResultsStore, ScenarioResult, claim_owner
from datalever.tasks import load_data, make_learner

PATHS = ("auto", "plain")
EXECUTORS = ("local", "ray")
MAX_JOBS = 1024
CLAIM_LEASE_S = 90.0
"""How long a run's claim on its scenarios holds unless renewed: a run that is killed blocks
the scenarios it was computing for at most this long."""
CLAIM_RENEW_S = 15.0
"""How often a working run renews its claims."""
WAIT_POLL_S = 1.0
#: The longest pause between looks while other runs hold the rest (it doubles from 1 s).
MAX_WAIT_POLL_S = 8.0
"""How often a run whose remaining scenarios are claimed by other runs looks for them."""


class BatchExecutor(Protocol):
    """Where a run's batches run: :class:`Executor` (this process or local worker
    processes) or :class:`~datalever.engine.ray_executor.RayExecutor` (a Ray cluster)."""

    data: Dataset

    @property
    def jobs(self) -> int:
        """How many batches run at once (batches are sized so that each gets work)."""
        ...

    def run(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        """Run ``batches``, handing each one's results to ``record`` in this process."""
        ...


@dataclass
class RunReport:
    run_id: str
    n_planned: int
    n_already_done: int
    """Scenarios this run did not compute: stored before it started, or by a concurrent run."""
    n_computed: int
    seconds: float
    interrupted: bool = False
    n_by_others: int = 0
    """Of ``n_already_done``, those a concurrent run stored while this one worked."""


def load_spec_data(spec: Spec) -> Dataset:
    """The spec's dataset, as its task family loads it (paths taken from the spec's folder)."""
    return load_data(spec)


def _batches(
    spec: Spec, pending: list[Scenario], jobs: int, learners: list | None = None
) -> list[tuple[int, int, list]]:
    """Batches of scenarios sharing a (learner, fold), in that order so each worker reuses its
    fold context; small enough that every worker gets work."""
    index_of = {ls.name: i for i, ls in enumerate(spec.learners)}
    groups: dict[tuple[int, int], list[Scenario]] = defaultdict(list)
    for sc in pending:
        groups[(index_of[sc.learner], sc.fold)].append(sc)
    if learners is None:
        learners = [make_learner(ls.name, ls.params()) for ls in spec.learners]
    out = []
    for (li, fold), scs in sorted(groups.items()):
        learner = learners[li]
        shared_by = 1 if learner.runs_on_gpu else max(1, jobs)  # GPU batches run one at a time
        size = max(1, min(learner.batch_size, math.ceil(len(scs) / shared_by)))
        out.extend((li, fold, scs[i : i + size]) for i in range(0, len(scs), size))
    return out


def _check_jobs(jobs: object) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise DataleverError(
            f"jobs must be a whole number from 1 to {MAX_JOBS}, not {str(jobs)[:40]!r}.",
            f"use at most one worker per core ({os.cpu_count() or 1} here).",
        )
    return jobs


class _ClaimKeeper:
    """Renews a run's claims in the background while its scenarios compute, so a long batch
    does not let them lapse; a failure here only lets them lapse (another run may then compute
    the same scenarios, which the store accepts once)."""

    def __init__(self, store: ResultsStore, owner: str) -> None:
        self.store, self.owner = store, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="datalever-claims", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(CLAIM_RENEW_S):
            with contextlib.suppress(Exception):
                self.store.renew_claims(self.owner, CLAIM_LEASE_S)

    def __enter__(self) -> _ClaimKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _release_claims(store: ResultsStore, owner: str) -> None:
    """Give up the run's claims on the way out; if the store cannot take even that (it failed,
    which is what the user is told), the claims lapse with their lease."""
    with contextlib.suppress(DataleverError):
        store.release_claims(owner)


def run_spec(
    spec: Spec,
    store: ResultsStore,
    *,
    data: Dataset | None = None,
    jobs: int = 1,
    path: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
    executor: BatchExecutor | str | None = None,
    on_wait: Callable[[int], None] | None = None,
    checked: Checked | None = None,
    address: str | None = None,
) -> RunReport:
    """Run every planned scenario of ``spec`` not yet in ``store``.

    Everything that can be refused (fitting path, jobs, data, collectives, plan, learners) is
    checked before the run is written to the store, so a refused run leaves nothing behind.
    Runs sharing a store cooperate: this run claims the scenarios it computes, skips those
    another live run has claimed, and takes them over if that run's claims lapse; it returns
    once every planned scenario is stored (by it or by others).

    ``on_plan(n_pending, n_planned)`` is called once before work starts and
    ``on_progress(n_finished, n_pending)`` after each scenario stored (here or by a concurrent
    run); ``on_wait(n)`` when this run starts waiting for ``n`` scenarios that other live runs
    are computing (again whenever that number changes). ``executor`` reuses worker processes
    (and their fold contexts) across runs on the same data. ``checked``, what
    :func:`check_runnable` returned for the same spec, data, path and jobs, spares checking
    (and planning) again.

    ``executor`` names where batches run: ``"local"`` (the default: this process, or ``jobs``
    worker processes) or ``"ray"`` (a Ray cluster at ``address``, see
    :class:`~datalever.engine.ray_executor.RayExecutor`; ``jobs`` is then the cluster's CPUs),
    or is an executor object to reuse. Results are the same wherever they are computed, so a
    run interrupted on one executor resumes on another.
    """
    started = time.perf_counter()
    if executor is not None and not isinstance(executor, str) and address is not None:
        raise DataleverError(
            "An address goes with the Ray executor's name, not with an executor object.",
            "give the address to RayExecutor, or pass executor='ray' with the address.",
        )
    if isinstance(executor, str) or address is not None:
        kind = executor if isinstance(executor, str) else "ray"
        if kind not in EXECUTORS:
            raise DataleverError(
                f"Unknown executor {str(kind)[:40]!r}.", f"use one of: {', '.join(EXECUTORS)}."
            )
        if kind == "local":
            if address is not None:
                raise DataleverError(
                    "An address is only for the Ray executor.",
                    "leave out the address, or choose the Ray executor.",
                )
            executor = None
        else:
            from datalever.engine.ray_executor import RayExecutor

            data = data if data is not None else load_spec_data(spec)
            # Refusals first (no cluster is contacted for a run that cannot run), then the
            # memory each of the cluster's machines needs.
            checked = checked or check_runnable(spec, data, path, 1)
            with RayExecutor(data, address) as on_ray:
                check_memory(checked[2], data, on_ray.jobs_per_machine)
                report = run_spec(
                    spec,
                    store,
                    data=data,
                    path=path,
                    on_progress=on_progress,
                    on_plan=on_plan,
                    run_id=run_id,
                    executor=on_ray,
                    on_wait=on_wait,
                    checked=checked,
                )
            report.seconds = time.perf_counter() - started  # connecting to Ray included
            return report
    jobs = executor.jobs if executor is not None else _check_jobs(jobs)
    if executor is not None:
        data = executor.data
    data = data if data is not None else load_spec_data(spec)
    per_machine = getattr(executor, "jobs_per_machine", jobs)
    checksum, scenarios, learners = checked or check_runnable(spec, data, path, per_machine)
    run_id = run_id or spec.run_id(path)
    # Nothing above writes; from here on the run exists in the store.
    store.start_run(run_id, spec.name, spec.data.dataset, checksum, spec.stored(), len(scenarios))
    done = store.link_existing(run_id, [s.key for s in scenarios])
    pending = [s for s in scenarios if s.key not in done]
    if on_plan:
        on_plan(len(pending), len(scenarios))
    owner = claim_owner()
    remaining = {s.key: s for s in pending}
    computed = by_others = 0
    interrupted = False
    waiting_for = 0

    def progress() -> None:
        if on_progress:
            on_progress(computed + by_others, len(pending))

    def record(results: list[ScenarioResult]) -> None:
        """Store a batch in one transaction, count it, then report progress scenario by
        scenario (a callback that stops the run finds every stored scenario counted)."""
        nonlocal computed, by_others
        before = computed + by_others
        for r, stored in zip(results, store.write_many(run_id, results, owner), strict=True):
            if stored:
                computed += 1
            else:  # a concurrent run stored it first (after its claim on it had lapsed)
                by_others += 1
            remaining.pop(r.key, None)
        if on_progress:
            for done in range(before + 1, computed + by_others + 1):
                on_progress(done, len(pending))

    try:
        with contextlib.ExitStack() as stack:
            if remaining:
                stack.enter_context(_ClaimKeeper(store, owner))
                stack.callback(_release_claims, store, owner)
            run_on = executor if executor is not None else stack.enter_context(Executor(data, jobs))
            chunk = _claim_chunk(jobs, learners)
            pause = WAIT_POLL_S
            while remaining:
                mine = store.claim(owner, list(remaining), CLAIM_LEASE_S, limit=chunk)
                todo = [sc for key, sc in remaining.items() if key in mine]
                if todo:
                    if waiting_for and on_wait:
                        on_wait(0)
                    waiting_for, pause = 0, WAIT_POLL_S
                    run_on.run(spec, path, _batches(spec, todo, jobs, learners), record)
                stored_elsewhere = store.link_existing(run_id, list(remaining))
                for key in stored_elsewhere:
                    if remaining.pop(key, None) is not None:
                        by_others += 1
                        progress()
                if remaining and not todo:  # the rest is claimed by live runs: wait for them
                    if on_wait and len(remaining) != waiting_for:
                        on_wait(len(remaining))
                    waiting_for = len(remaining)
                    time.sleep(pause)
                    pause = min(2 * pause, MAX_WAIT_POLL_S)
    except KeyboardInterrupt:
        interrupted = True
    return RunReport(
        run_id,
        len(scenarios),
        len(done) + by_others,
        computed,
        time.perf_counter() - started,
        interrupted,
        by_others,
    )


def _claim_chunk(jobs: int, learners: list[Learner]) -> int:
    """How many scenarios a run claims at a time: enough batches to keep every worker busy a
    while, few enough that runs started together on one store share the work."""
    return max(64, 4 * jobs * max(learner.batch_size for learner in learners))


#: What :func:`check_runnable` returns: the data's checksum, the plan and the built learners.
Checked = tuple[str, list[Scenario], list[Learner]]


def check_runnable(spec: Spec, data: Dataset, path: str = "auto", jobs: int = 1) -> Checked:
    """Everything that can refuse a run, checked without writing anything: the fitting path,
    the collectives against the data, the plan, the learners and the memory they need. Returns
    the data's checksum, the planned scenarios and the built learners."""
    if path not in PATHS:
        raise DataleverError(f"Unknown fitting path {path!r}.", f"use one of: {', '.join(PATHS)}.")
    check_collectives(spec, data)
    for lever in spec.all_levers():
        make_lever(lever.kind, lever.params()).check(data)
    checksum = data.checksum()
    scenarios = plan(spec, checksum, path, data)
    learners = [make_learner(ls.name, ls.params()) for ls in spec.learners]
    for learner in learners:
        learner.check(data)
    check_memory(learners, data, jobs)
    return checksum, scenarios, learners


def check_memory(learners: list[Learner], data: Dataset, jobs: int = 1) -> None:
    """Refuse a run whose learners would not fit in memory: each of ``jobs`` processes holds up
    to two fold contexts of one learner at a time, each about the learner's estimate."""
    users, items, records = data.n_contributors, data.width, len(data)
    need = max(learner.memory_bytes(users, items, records) for learner in learners)
    total = 2 * need * max(1, jobs)
    limit = memory_limit()
    if total > limit:
        worst = max(learners, key=lambda le: le.memory_bytes(users, items, records))
        gib = 2**30
        raise DataleverError(
            f"This run would need about {total / gib:,.1f} GiB ({worst.name} on {users:,} "
            f"contributors and a width of {items:,} (items or features), {max(1, jobs)} "
            "process(es) holding two folds each), more "
            f"than the {limit / gib:,.1f} GiB available.",
            "use fewer --jobs, a smaller dataset or another learner; if the estimate is too "
            "cautious, set DATALEVER_MAX_MEMORY (bytes) to allow it.",
        )


def check_collectives(spec: Spec, data: Dataset) -> None:
    """Fail before anything runs if a group selects nobody or a count exceeds the users."""
    for group in spec.collectives.groups:
        group_members(data, group, spec.folder)
    too_many = [c for c in spec.collectives.counts if c > data.n_contributors]
    if too_many:
        raise DataleverError(
            f"Collective counts {too_many} exceed the {data.n_contributors} contributors of "
            f"{data.name}.",
            "use smaller counts, or sizes as fractions of contributors.",
        )
