"""Run the engine's batches on a Ray cluster, so one sweep uses the cores of many machines.

What travels where:

- The dataset is put into Ray's object store once per executor (one ``ray.put``); each node
  pulls it once into its shared memory, and every worker on that node maps the same copy.
  The folds of a protocol are split once here and shared the same way.
- A task carries only the spec, the fitting path, a (learner, fold) pair and its batch of
  scenarios (a few KB), plus the two object references.
- Each Ray worker process keeps, as a local pool worker does, the data it unpacked and its
  last two fold contexts between tasks, so a worker handed batches of the same (learner,
  fold) fits the no-action model once.
- Results come back to this process, which alone writes them into the results store, as
  batches finish (workers never open the store). Ray hands back one result per task even when
  it retried the task after a worker died, and the store stores a scenario once whatever
  happens (its key is the primary key, and a scenario already stored is only linked), so no
  scenario is lost or stored twice.

Batches of learners that fit on a GPU run in this process, one at a time, as with the local
executor.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from datalever.core.task import Dataset
from datalever.engine import executor as local
from datalever.errors import DataleverError
from datalever.scenarios import Scenario
from datalever.spec import Spec
from datalever.store import ScenarioResult

INSTALL = "pip install 'datalever[ray]'"
MAX_RETRIES = 3
"""How many times Ray runs a batch again after its worker died (killed, out of memory, its
node gone) before the run stops with an error."""
CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a cluster's address to answer before saying it cannot be reached
(Ray itself would retry for minutes)."""
WAIT_S = 0.5
"""The longest a wait for results blocks at once, so Ctrl-C is handled promptly."""


def import_ray() -> Any:
    """The ray module, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise DataleverError(
            "Running on a Ray cluster needs the ray package, which is not installed.",
            f"install it with {INSTALL} (on this machine and every node of the cluster), or "
            "run without the Ray executor.",
        ) from None
    return ray


# --- worker side: runs in Ray's worker processes ----------------------------------------------


def _ray_batch(
    refs: list,
    spec: Spec,
    path: str,
    learner_index: int,
    fold_index: int,
    batch: list[Scenario],
) -> list[ScenarioResult]:
    """One batch in a Ray worker. ``refs`` (the data's and the folds' object references) come
    wrapped in a list so that Ray hands over the references, not copies: the data is unpacked
    once per worker process and kept, with its fold contexts, for the next batches."""
    import ray

    data_ref, folds_ref = refs
    if local._WORKER.get("data_ref") != data_ref.hex():
        if not local._WORKER.get("threads_set"):
            local._one_thread_each()
        local._set_data(ray.get(data_ref))
        local._WORKER.update(data_ref=data_ref.hex(), threads_set=True)
    return local._run_batch(
        spec, path, learner_index, fold_index, batch, folds=lambda: ray.get(folds_ref)
    )


# --- driver side --------------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """Fail within seconds, with a clear message, when nothing answers at ``address``."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DataleverError(
            f"{address!r} is not a Ray cluster address.",
            "give HOST:PORT as `ray start --head` printed it (its GCS port, 6379 by default), "
            "'auto' for a cluster started on this machine, or no address to start Ray here.",
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise DataleverError(
            f"Cannot reach a Ray cluster at {address} ({e.strerror or e}).",
            "check that `ray start --head` runs there and that this machine can reach that "
            "port, or leave out the address to start Ray on this machine.",
        ) from None


class RayExecutor:
    """Where batches run when they run on a Ray cluster: one task per batch, one CPU each.

    ``address``: a running cluster (HOST:PORT, ``auto`` for one started on this machine with
    ``ray start``, or ``ray://HOST:PORT`` through Ray Client); ``None`` connects to
    ``RAY_ADDRESS`` if set, else starts Ray on this machine alone (with ``num_cpus`` CPUs, all
    by default). If this process is already connected to Ray, that connection is used and left
    open. Connects when first needed; :meth:`close` (or leaving a ``with`` block) disconnects
    and frees the objects it put into the object store."""

    def __init__(
        self,
        data: Dataset,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.data = data
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self._ray: Any = None
        self._owns_connection = False
        self._jobs = 0
        self._per_machine = 0
        self._data_ref: Any = None
        self._folds: dict[str, Any] = {}
        self._remote: Any = None

    def __enter__(self) -> RayExecutor:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the cluster ---------------------------------------------------------------------------

    def connect(self) -> Any:
        """Connect (once) and learn the cluster's CPUs; returns the ray module."""
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            if self.address not in (None, "auto"):
                _check_reachable(self.address)
            try:
                ray.init(
                    address=self.address,
                    num_cpus=self.num_cpus if self.address is None else None,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    include_dashboard=False if self.address is None else None,
                )
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise DataleverError(
                    f"Cannot connect to the Ray cluster at {self.address or 'RAY_ADDRESS'}: "
                    f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}.",
                    "start one with `ray start --head` and give its address (HOST:PORT), or "
                    "leave out the address to start Ray on this machine.",
                ) from None
            self._owns_connection = True
        self._ray = ray
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            per_node = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
            self._jobs = int(ray.cluster_resources().get("CPU", 0))
            self._per_machine = max(per_node, default=0)
            if self._jobs < 1:
                raise DataleverError(
                    "The Ray cluster has no CPUs to run on.",
                    "start its nodes with --num-cpus of at least 1.",
                )
        except BaseException:
            self.close()
            raise
        self._remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_batch)
        return ray

    @property
    def jobs(self) -> int:
        """The cluster's CPUs: how many batches run at once (the runner sizes batches by it)."""
        self.connect()
        return self._jobs

    @property
    def jobs_per_machine(self) -> int:
        """The most CPUs (so worker processes, each holding its fold contexts) on one node:
        what a machine's memory must hold."""
        self.connect()
        return self._per_machine

    def close(self) -> None:
        """Drop this executor's objects from the object store and disconnect if this executor
        connected (a cluster it started on this machine stops with it)."""
        ray, self._ray = self._ray, None
        self._data_ref, self._folds, self._remote = None, {}, None
        if ray is not None and self._owns_connection:
            self._owns_connection = False
            # Not cut short by a second Ctrl-C (Ray's own processes on this machine pass one
            # on as they stop): a half-done shutdown would leave them running.
            with contextlib.suppress(Exception), local._sigint_ignored():
                ray.shutdown()

    # --- running -------------------------------------------------------------------------------

    def _refs(self, spec: Spec, path: str) -> list:
        """The data's object reference (put once) and the spec's folds' (split and put once
        per fold set-up, as a worker's fold contexts are keyed)."""
        ray = self._ray
        if self._data_ref is None:
            self._data_ref = ray.put(self.data)
        fingerprint = local._context_fingerprint(spec, path)
        if fingerprint not in self._folds:
            self._folds = {fingerprint: ray.put(local.spec_folds(spec, self.data))}
        return [self._data_ref, self._folds[fingerprint]]

    def run(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        """Run ``batches`` as Ray tasks and hand each batch's results to ``record`` (in this
        process) as they finish. On an error or an interrupt (Ctrl-C) the tasks in flight are
        cancelled; their scenarios are computed again on resume."""
        ray = self.connect()
        on_gpu = local._gpu_learners(spec)
        here = [b for b in batches if b[0] in on_gpu]
        queue = iter([b for b in batches if b[0] not in on_gpu])
        refs = self._refs(spec, path)
        remote = self._remote

        def submit(n: int) -> list:
            return [remote.remote(refs, spec, path, *b) for b in local._take(queue, n)]

        running: list = []
        try:
            running = submit(2 * self.jobs)  # queued beyond the CPUs, so none idles
            self._run_here(spec, path, here, record)
            while running:
                ready, running = ray.wait(running, num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    record(self._result(ray, ref))
                running += submit(len(ready))
        except BaseException:
            _cancel(ray, running)
            raise

    def _run_here(self, spec: Spec, path: str, batches: list, record: Callable) -> None:
        """GPU learners' batches, in this process as the local executor runs them."""
        if not batches:
            return
        if local._WORKER.get("data") is not self.data:
            local._set_data(self.data)
        for li, fold, batch in batches:
            record(local._run_batch(spec, path, li, fold, batch))

    def _result(self, ray: Any, ref: Any) -> list[ScenarioResult]:
        """A finished task's results; its failure as the error a local run gives."""
        exceptions = ray.exceptions
        try:
            return ray.get(ref)
        except exceptions.RayTaskError as e:
            cause = e.cause
            if isinstance(cause, DataleverError):
                raise cause from None
            if isinstance(cause, BaseException):
                raise cause from e
            raise
        except (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.OutOfMemoryError,
            exceptions.ObjectLostError,
        ) as e:
            raise DataleverError(
                f"A Ray worker stopped unexpectedly {self.max_retries + 1} times on the same "
                "batch (killed from outside, out of memory, or its node left the cluster); "
                f"every finished scenario is stored. Ray said: {_first_line(e)}",
                "run the same command again to resume, on nodes with more memory if memory "
                "is short.",
            ) from None
        except exceptions.RayError as e:
            raise DataleverError(
                f"The Ray cluster failed while running the batches: {_first_line(e)}. Every "
                "finished scenario is stored.",
                "check the cluster (`ray status`), then run the same command again to resume.",
            ) from None


def _cancel(ray: Any, refs: Iterable) -> None:
    """Stop tasks in flight (their workers are killed, as the local executor kills its own);
    the cluster keeps running."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def wait_for_cpus(ray: Any, cpus: int, timeout_s: float = 60.0) -> None:
    """Wait until the cluster offers ``cpus`` CPUs (nodes joining take a few seconds)."""
    deadline = time.monotonic() + timeout_s
    while ray.cluster_resources().get("CPU", 0) < cpus:
        if time.monotonic() > deadline:
            raise DataleverError(
                f"The Ray cluster did not reach {cpus} CPUs within {timeout_s:.0f} s.",
                "check its nodes with `ray status`.",
            )
        time.sleep(0.2)


__all__ = ["INSTALL", "RayExecutor", "import_ray", "wait_for_cpus"]
