"""Levers (what a collective does) and the catalogue a spec names them from.

A new lever is one module here: a :class:`Lever` subclass with its typed ``Config``, added to
``LEVERS``. The plan, the engine, the store and the reports take any lever as it is.
"""

from __future__ import annotations

from typing import Any

from datalever.errors import DataleverError
from datalever.levers.base import Lever, LeverConfig
from datalever.levers.boycott import Boycott
from datalever.levers.contribute import Contribute
from datalever.levers.optout import OptOut
from datalever.levers.plant import Plant
from datalever.levers.poison import Poison
from datalever.levers.strike import Strike
from datalever.plugins import Catalogue


def _plugins() -> dict[str, type[Lever]]:
    """The plugins' levers (see :mod:`datalever.plugins`)."""
    from datalever import plugins

    return plugins.levers()


#: The levers a spec can name: built-in ones, and plugins' (loaded on first use).
LEVERS: dict[str, type[Lever]] = Catalogue(
    {cls.kind: cls for cls in (Strike, Boycott, Poison, Plant, Contribute, OptOut)}, _plugins
)


def lever_class(kind: str) -> type[Lever]:
    if kind not in LEVERS:
        raise DataleverError(
            f"Unknown lever {str(kind)[:40]!r}.", f"use one of: {', '.join(LEVERS)}."
        )
    return LEVERS[kind]


def make_lever(kind: str, params: dict[str, Any] | None = None) -> Lever:
    """The lever ``kind`` with ``params``, checked by its typed config."""
    cls = lever_class(kind)
    cls.Config.check(kind, params or {})
    return cls(**(params or {}))


__all__ = [
    "LEVERS",
    "Boycott",
    "Contribute",
    "Lever",
    "LeverConfig",
    "OptOut",
    "Plant",
    "Poison",
    "Strike",
    "lever_class",
    "make_lever",
]
