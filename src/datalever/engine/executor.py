"""Where batches of scenarios run: in this process, or in a pool of worker processes that
receive the data once and keep their fold contexts between batches.

The workers are safe whatever this process has loaded, and never outlive it:

- They start from a fork server (or, where there is none, are spawned), never by forking this
  process: a process that has run GNU OpenMP (numba's default threading layer, started by
  something as small as ``numba.get_num_threads()``), CUDA or other threads cannot fork
  workers that use them again. The fork server imports the engine once (the workers fork from
  it, ready), and the data reaches each worker once, pickled a single time here.
- They never import the caller's ``__main__``: a script that calls :func:`run_spec` without an
  ``if __name__ == "__main__":`` guard is not run again in every worker.
- Each watches this process and exits the moment it dies (``kill -9`` included), so no worker
  is orphaned and none keeps the caller's stdout or stderr open; on Linux the kernel also kills
  a worker busy in compiled code, through the fork server's death.
- They ignore SIGINT: Ctrl-C reaches the whole process group, and this process alone handles it
  (it stops the workers and keeps every finished scenario), so no worker prints a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver, spawn
from multiprocessing.connection import wait as wait_ready

from threadpoolctl import ThreadpoolController, threadpool_limits

from datalever.core.task import Dataset as Contributions
from datalever.core.task import Fold
from datalever.engine.scenario_eval import FoldContext, spec_folds
from datalever.errors import DataleverError
from datalever.scenarios import Scenario
from datalever.spec import Spec
from datalever.store import ScenarioResult
from datalever.tasks import make_learner

# What the fork server imports once, so that each worker forked from it starts ready.
_PRELOAD = ["datalever.engine.executor"]

# --- worker side: the data and fold contexts live in the worker process, shared by batches.
_WORKER: dict = {}


def _set_data(data: Contributions) -> None:
    """The data arrives once per worker process, not with every batch."""
    _WORKER.clear()
    _WORKER.update(data=data, fingerprint=None)


def _init_worker_process(pickled_data: bytes) -> None:
    """Worker initialiser. SIGINT is ignored first (this process handles Ctrl-C); the worker
    then ties its life to this process's. In a pool the processes share the cores: each runs
    its compiled loops and its BLAS on one thread (several BLAS threads per worker would fight
    over the same cores)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    _one_thread_each()
    _set_data(pickle.loads(pickled_data))


def _one_thread_each() -> None:
    """Set up a worker that shares the cores with others (a pool's, or a Ray node's): compiled
    loops and BLAS on one thread each."""
    # Workers start no processes. Saying so keeps numba from making its threading layer's
    # start-up lock a named semaphore (a lock across processes that no other process shares),
    # which a worker stopped by SIGKILL would leave for the resource tracker to clean up,
    # with a warning printed beside the caller's output.
    multiprocessing.set_start_method("spawn", force=True)
    import numba

    numba.set_num_threads(1)
    threadpool_limits(1)
    # PyTorch (the transformer language model) reads its thread count when first imported,
    # which in a worker happens after this: one thread, like everything else here.
    os.environ["OMP_NUM_THREADS"] = "1"


def _exit_with_parent() -> None:
    """Make this worker exit as soon as the engine's process dies, however it dies.

    A thread waits on the parent's sentinel (a pipe only the parent holds open: it reads as
    closed the moment the parent is gone) and ends the process. That thread needs the GIL,
    which a long compiled loop may hold; so on Linux the worker also asks the kernel for
    SIGKILL when its own parent, the fork server, dies, and lets go of its copy of the fork
    server's keep-alive pipe, so that the fork server (and with it every worker) goes the
    moment the engine's process does."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel
    threading.Thread(
        target=_exit_when_ready, args=(sentinel,), name="exit-with-parent", daemon=True
    ).start()
    server = getattr(forkserver, "_forkserver", None)
    if getattr(server, "_forkserver_alive_fd", None) is None:
        return  # not forked by a fork server
    # Only under a fork server: its one thread is the parent the kernel watches (a spawned
    # worker's would be whichever thread of the engine's process started it). The kernel
    # watches before the worker lets go of the pipe, so no death falls between the two.
    if sys.platform.startswith("linux"):
        _kill_on_parent_death()
    _release_fork_server(server)


def _exit_when_ready(sentinel: int) -> None:
    wait_ready([sentinel])
    os._exit(1)


def _release_fork_server(server: object) -> None:
    """Close this worker's copy of the fork server's keep-alive pipe (workers never start
    processes of their own), so the fork server ends with the engine's process."""
    with contextlib.suppress(OSError):
        os.close(server._forkserver_alive_fd)
    server._forkserver_alive_fd = None


_PR_SET_PDEATHSIG = 1


def _kill_on_parent_death() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this worker when its parent (the
    fork server) dies, even in the middle of compiled code."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


# --- engine side: how the workers are started.
_STARTING = threading.local()


def _without_main(get_preparation_data: Callable) -> Callable:
    """Wrap multiprocessing's start-up data so that the workers started by this module (and
    only those) do not import the caller's ``__main__``: they run this package's functions
    only, and a script without an ``if __name__ == "__main__":`` guard would otherwise run
    again in every worker."""

    @functools.wraps(get_preparation_data)
    def preparation_data(name: str) -> dict:
        data = get_preparation_data(name)
        if getattr(_STARTING, "workers", False):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data.without_main = True  # type: ignore[attr-defined]
    return preparation_data


# Installed once on multiprocessing.spawn (which the fork server's and spawn's start-up both
# call); processes the caller starts itself are started as before.
if not getattr(spawn.get_preparation_data, "without_main", False):
    spawn.get_preparation_data = _without_main(spawn.get_preparation_data)


@contextlib.contextmanager
def _starting_workers() -> Iterator[None]:
    """Where this thread may start pool workers (``submit`` starts them on demand)."""
    _STARTING.workers = True
    try:
        yield
    finally:
        _STARTING.workers = False


def _pool_context() -> multiprocessing.context.BaseContext:
    """A fork server where the platform has one (it imports the engine once, and each worker
    forks from it ready), else spawn. Never a fork of this process.

    The fork server is one per process: if datalever starts it first, the caller's own
    fork-server pools share it, with the engine preloaded and SIGINT ignored in their workers
    (the fork server itself always ignores it)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # no effect once the fork server is running
    with _sigint_ignored():
        # The fork server (and the resource tracker it starts) inherit SIGINT ignored, so a
        # Ctrl-C while it imports the engine prints nothing, and workers start ignoring it.
        forkserver.ensure_running()
    return context


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT for a moment (only the main thread can change a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _context_fingerprint(spec: Spec, path: str) -> str:
    """What a fold context depends on: everything but the collectives (and the run's name)."""
    include = {"seed", "data", "protocol", "learners", "evaluation"}
    return spec.model_dump_json(include=include) + path


def _run_batch(
    spec: Spec,
    path: str,
    learner_index: int,
    fold_index: int,
    batch: list[Scenario],
    folds: Callable[[], list[Fold]] | None = None,
) -> list[ScenarioResult]:
    """Run one batch in this process, reusing its fold contexts. ``folds`` hands over folds
    computed once elsewhere (the Ray executor's, from the object store); else they are split
    here."""
    data = _WORKER["data"]
    # Successive runs that differ only in their collectives (as `ask` makes) keep their fold
    # contexts, so the no-action models are not fitted again.
    fingerprint = _context_fingerprint(spec, path)
    if _WORKER["fingerprint"] != fingerprint:
        _WORKER.update(
            fingerprint=fingerprint,
            contexts=OrderedDict(),
            folds=folds() if folds is not None else spec_folds(spec, data),
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
    with _blas().limit(limits=1, user_api="blas"):
        return context.run(batch)


@functools.cache
def _blas() -> ThreadpoolController:
    """This process's thread pools, inspected once (inspecting them costs milliseconds, a
    share of a fast-path batch)."""
    return ThreadpoolController()


class Executor:
    """Where batches run: in this process (``jobs=1``) or a pool of worker processes that
    receive the data once. Reusable across runs on the same data (``ask`` runs many)."""

    def __init__(self, data: Contributions, jobs: int = 1) -> None:
        self.data = data
        self.jobs = max(1, jobs)
        self._pool: ProcessPoolExecutor | None = None
        self._pickled: bytes | None = None
        self._entered = False

    def __enter__(self) -> Executor:
        self._entered = True
        if self.jobs > 1:
            self._start_pool()
        return self

    def __exit__(self, *exc) -> None:
        self._entered = False
        if exc[0] is not None:
            self._stop_pool()  # an interrupt or error: do not wait for batches in flight
        elif self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _start_pool(self) -> None:
        if self._pickled is None:
            self._pickled = pickle.dumps(self.data, protocol=pickle.HIGHEST_PROTOCOL)
        self._pool = ProcessPoolExecutor(
            self.jobs,
            mp_context=_pool_context(),
            initializer=_init_worker_process,
            initargs=(self._pickled,),
        )

    def _stop_pool(self) -> None:
        """Stop the workers at once, batches in flight included (their results are lost and
        computed again on resume), and wait for them to be gone."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        kill = getattr(pool, "kill_workers", None)  # Python 3.14+
        if kill is not None:
            kill()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def run(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        """Run ``batches`` and hand each batch's results to ``record`` as they finish.

        Batches of learners that fit on a GPU run in this process, one at a time, never in the
        workers (each would start its own context on the one device). If this is interrupted
        (Ctrl-C) or a batch fails, the workers are stopped at once; a later call starts new
        ones."""
        if self.jobs > 1 and self._entered and self._pool is None:
            self._start_pool()
        if self._pool is None:
            self._run_here(spec, path, batches, record)
            return
        pool = self._pool
        on_gpu = _gpu_learners(spec)
        here = [b for b in batches if b[0] in on_gpu]
        queue = iter([b for b in batches if b[0] not in on_gpu])

        def submit(n: int) -> set:
            with _starting_workers():
                return {pool.submit(_run_batch, spec, path, *b) for b in _take(queue, n)}

        try:
            # The workers start with the first submission; they keep the cores busy while this
            # process fits its own (GPU) batches.
            running = submit(self.jobs * 2)
            self._run_here(spec, path, here, record)
            while running:
                finished_now, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished_now:
                    record(fut.result())
                running |= submit(len(finished_now))
        except BrokenProcessPool as e:
            self._stop_pool()
            raise DataleverError(
                "A worker process stopped unexpectedly (killed from outside, or out of "
                "memory: each worker holds a copy of the data); every finished scenario is "
                "stored.",
                "run the same command again to resume, with fewer --jobs if memory is short.",
            ) from e
        except BaseException:
            self._stop_pool()
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
