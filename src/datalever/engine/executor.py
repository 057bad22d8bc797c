"""Where batches of scenarios run: in this process, or in a pool of worker processes that
receive the data once and keep their fold contexts between batches."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from threadpoolctl import threadpool_limits

from datalever.data.contributions import Contributions
from datalever.engine.scenario_eval import FoldContext, make_protocol
from datalever.learners import make_learner
from datalever.scenarios import Scenario
from datalever.spec import Spec
from datalever.store import ScenarioResult

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


def _take(it, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out
