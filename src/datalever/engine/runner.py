"""Run a spec: plan its scenarios, skip those already stored, run the rest in batches (in this
process or a pool of worker processes) and store each result as it finishes."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

from datalever.collectives import group_members
from datalever.data.contributions import Contributions
from datalever.engine.scenario_eval import FoldContext, make_protocol
from datalever.errors import DataleverError
from datalever.learners import make_learner
from datalever.scenarios import Scenario, plan
from datalever.spec import Spec
from datalever.store import ResultsStore, ScenarioResult

PATHS = ("auto", "plain")


@dataclass
class RunReport:
    run_id: str
    n_planned: int
    n_already_done: int
    n_computed: int
    seconds: float
    interrupted: bool = False


def load_spec_data(spec: Spec) -> Contributions:
    from datalever.data.registry import load_dataset
    from datalever.data.tabular import load_table

    if spec.data.columns:
        return load_table(spec.data.dataset, spec.data.columns, name=spec.data.dataset)
    return load_dataset(spec.data.dataset)


# --- worker side: the data and fold contexts live in the worker process, shared by batches.
_WORKER: dict = {}


def _set_data(data: Contributions) -> None:
    """Worker initialiser: the data arrives once per worker process, not with every batch."""
    _WORKER.clear()
    _WORKER.update(data=data, fingerprint=None)


def _init_worker_process(data: Contributions) -> None:
    """In a pool the processes share the cores: each runs its compiled loops and its BLAS on
    one thread (several BLAS threads per worker would fight over the same cores)."""
    import numba

    numba.set_num_threads(1)
    threadpool_limits(1)
    _set_data(data)


def _context_fingerprint(spec: Spec, path: str) -> str:
    """What a fold context depends on: everything but the collectives (and the run's name)."""
    include = {"seed", "data", "protocol", "learners", "evaluation"}
    return spec.model_dump_json(include=include) + path


def _run_batch(
    spec: Spec, path: str, learner_index: int, fold_index: int, batch: list[Scenario]
) -> list[ScenarioResult]:
    data = _WORKER["data"]
    # Successive runs that differ only in their collectives (as `ask` makes) keep their fold
    # contexts, so the no-action models are not fitted again.
    fingerprint = _context_fingerprint(spec, path)
    if _WORKER["fingerprint"] != fingerprint:
        _WORKER.update(
            fingerprint=fingerprint,
            contexts=OrderedDict(),
            folds=make_protocol(spec).folds(data, spec.seed),
        )
    contexts: OrderedDict = _WORKER["contexts"]
    key = (learner_index, fold_index)
    if key in contexts:
        contexts.move_to_end(key)
    else:
        fold = _WORKER["folds"][fold_index]
        contexts[key] = FoldContext.build(spec, data, fold, learner_index, path)
        while len(contexts) > 2:  # bounded memory: batches arrive ordered by (learner, fold)
            contexts.popitem(last=False)
    # A fast-path scenario is many mid-sized BLAS calls, which ran twice as fast on one thread
    # as on two here (threads hand off more than they share); the fold set-up's large inverse
    # above, and plain refits, keep every thread (a fast path's occasional refit, such as
    # EASE's for a very large delta, runs on one). Pool workers run on one thread throughout.
    context = contexts[key]
    if context.fast is None:
        return context.run(batch)
    with threadpool_limits(1, user_api="blas"):
        return context.run(batch)


class Executor:
    """Where batches run: in this process (``jobs=1``) or a pool of worker processes that
    receive the data once. Reusable across runs on the same data (``ask`` runs many)."""

    def __init__(self, data: Contributions, jobs: int = 1) -> None:
        self.data = data
        self.jobs = max(1, jobs)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Executor:
        if self.jobs > 1:
            self._pool = ProcessPoolExecutor(
                self.jobs, initializer=_init_worker_process, initargs=(self.data,)
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def run(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        """Run ``batches`` and hand each batch's results to ``record`` as they finish.

        Batches of learners that fit on a GPU run in this process, one at a time, never in the
        workers (each would start its own context on the one device)."""
        if self._pool is None:
            self._run_here(spec, path, batches, record)
            return
        on_gpu = _gpu_learners(spec)
        here = [b for b in batches if b[0] in on_gpu]
        queue = iter([b for b in batches if b[0] not in on_gpu])

        def submit(n: int) -> set:
            return {self._pool.submit(_run_batch, spec, path, *b) for b in _take(queue, n)}

        # The workers start (fork) with the first submission, before this process starts a
        # GPU; they keep the cores busy while it fits its own batches.
        running = submit(self.jobs * 2)
        try:
            self._run_here(spec, path, here, record)
            while running:
                finished_now, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished_now:
                    record(fut.result())
                running |= submit(len(finished_now))
        except BaseException:
            for fut in running:
                fut.cancel()
            raise

    def _run_here(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        if _WORKER.get("data") is not self.data:
            _set_data(self.data)
        for li, fold, batch in batches:
            record(_run_batch(spec, path, li, fold, batch))


def _gpu_learners(spec: Spec) -> set[int]:
    """Indices of the spec's learners that fit on a GPU."""
    return {
        i for i, ls in enumerate(spec.learners) if make_learner(ls.name, ls.params()).runs_on_gpu
    }


def _batches(spec: Spec, pending: list[Scenario], jobs: int) -> list[tuple[int, int, list]]:
    """Batches of scenarios sharing a (learner, fold), in that order so each worker reuses its
    fold context; small enough that every worker gets work."""
    index_of = {ls.name: i for i, ls in enumerate(spec.learners)}
    groups: dict[tuple[int, int], list[Scenario]] = defaultdict(list)
    for sc in pending:
        groups[(index_of[sc.learner], sc.fold)].append(sc)
    learners = [make_learner(ls.name, ls.params()) for ls in spec.learners]
    out = []
    for (li, fold), scs in sorted(groups.items()):
        learner = learners[li]
        shared_by = 1 if learner.runs_on_gpu else max(1, jobs)  # GPU batches run one at a time
        size = max(1, min(learner.batch_size, math.ceil(len(scs) / shared_by)))
        out.extend((li, fold, scs[i : i + size]) for i in range(0, len(scs), size))
    return out


def run_spec(
    spec: Spec,
    store: ResultsStore,
    *,
    data: Contributions | None = None,
    jobs: int = 1,
    path: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
    executor: Executor | None = None,
) -> RunReport:
    """Run every planned scenario of ``spec`` not yet in ``store``.

    ``on_plan(n_pending, n_planned)`` is called once before work starts and
    ``on_progress(n_finished, n_pending)`` after each stored scenario. ``executor`` reuses
    worker processes (and their fold contexts) across runs on the same data.
    """
    started = time.perf_counter()
    if executor is not None:
        data = executor.data
    data = data if data is not None else load_spec_data(spec)
    check_collectives(spec, data)
    checksum = data.checksum()
    if path not in PATHS:
        raise DataleverError(f"Unknown fitting path {path!r}.", f"use one of: {', '.join(PATHS)}.")
    scenarios = plan(spec, checksum, path)
    run_id = run_id or spec.run_id(path)
    store.start_run(
        run_id, spec.name, spec.data.dataset, checksum, spec.model_dump(mode="json"), len(scenarios)
    )
    done = store.link_existing(run_id, [s.key for s in scenarios])
    pending = [s for s in scenarios if s.key not in done]
    if on_plan:
        on_plan(len(pending), len(scenarios))
    batches = _batches(spec, pending, executor.jobs if executor is not None else jobs)
    finished = 0
    interrupted = False

    def record(results: list[ScenarioResult]) -> None:
        nonlocal finished
        for r in results:
            store.write(run_id, r)
            finished += 1
            if on_progress:
                on_progress(finished, len(pending))

    try:
        if executor is not None:
            executor.run(spec, path, batches, record)
        else:
            with Executor(data, jobs) as own:
                own.run(spec, path, batches, record)
    except KeyboardInterrupt:
        interrupted = True
    return RunReport(
        run_id, len(scenarios), len(done), finished, time.perf_counter() - started, interrupted
    )


def check_collectives(spec: Spec, data: Contributions) -> None:
    """Fail before anything runs if a group selects nobody or a count exceeds the users."""
    for group in spec.collectives.groups:
        group_members(data, group)
    too_many = [c for c in spec.collectives.counts if c > data.n_contributors]
    if too_many:
        raise DataleverError(
            f"Collective counts {too_many} exceed the {data.n_contributors} users of {data.name}.",
            "use smaller counts, or sizes as fractions of users.",
        )


def _take(it, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out
