"""datalever: measure how much a collective of data contributors can boost or harm a model.

The public API (see :mod:`datalever.api`)::

    import datalever as dl

    run = dl.run("examples/data-strikes-ml100k.toml", store="strikes.sqlite")
    run.summary()                      # a pandas DataFrame
    run.report("report.html")

Its names load on first use, so ``import datalever`` stays quick for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = (
    "DEFAULT_STORE",
    "Run",
    "ask",
    "load_dataset",
    "load_spec",
    "open_run",
    "run",
    "runs",
)
_ELSEWHERE = {"DataleverError": "datalever.errors", "Spec": "datalever.spec"}

if TYPE_CHECKING:
    from datalever.api import (
        DEFAULT_STORE,
        Run,
        ask,
        load_dataset,
        load_spec,
        open_run,
        run,
        runs,
    )
    from datalever.errors import DataleverError
    from datalever.spec import Spec


def __getattr__(name: str) -> Any:
    import importlib

    if name in _API:
        return getattr(importlib.import_module("datalever.api"), name)
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'datalever' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_ELSEWHERE])


__all__ = [
    "DEFAULT_STORE",
    "DataleverError",
    "Run",
    "Spec",
    "__version__",
    "ask",
    "load_dataset",
    "load_spec",
    "open_run",
    "run",
    "runs",
]
