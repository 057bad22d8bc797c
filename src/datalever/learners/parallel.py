"""Running numba's ``parallel=True`` kernels (biased MF's SGD, the KNN top-N grid) safely.

Numba's default threading layer on Linux without TBB is GNU OpenMP, which is not fork safe: a
process that has used it cannot fork processes that use it again. The engine's worker pool does
not depend on this process's layer (its workers fork from a fork server that has never run a
kernel, see :mod:`datalever.engine.executor`), but a caller may fork after running datalever
in its own process (``multiprocessing``'s default on Linux before Python 3.14). So unless the
user chose a layer (``NUMBA_THREADING_LAYER`` or ``numba.config.THREADING_LAYER``), we ask for
a ``"forksafe"`` layer before a kernel first runs (TBB if installed, else numba's
``workqueue``). ``workqueue`` is not thread safe, so every parallel kernel runs inside
:func:`parallel_kernel`, which serialises them. Each process runs up to ``NUMBA_NUM_THREADS``
kernel threads (default: one per core); the engine's worker processes run one each.

Importing datalever never starts a layer (the fork server imports the engine before it forks
workers); only calling a kernel does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numba

_LOCK = threading.Lock()


def choose_threading_layer() -> None:
    """Ask numba for a fork-safe threading layer, unless one is chosen or already running."""
    if "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default":
        return
    try:
        numba.threading_layer()  # raises ValueError until a layer has been launched
    except ValueError:
        numba.config.THREADING_LAYER = "forksafe"


@contextmanager
def parallel_kernel() -> Iterator[None]:
    """Where a ``parallel=True`` kernel is called: one at a time, on a fork-safe layer."""
    with _LOCK:
        choose_threading_layer()
        yield
