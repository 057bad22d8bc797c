"""Learners (model recipes) and the catalogue the spec names them from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datalever.core.config import LearnerConfig, show
from datalever.errors import DataleverError
from datalever.learners.base import Delta, Learner, Model
from datalever.learners.baselines import GlobalMean, ItemMean, Popularity
from datalever.learners.ease import EASE
from datalever.learners.knn import ItemKNN, UserKNN
from datalever.learners.knn_centered import CenteredItemKNN
from datalever.learners.mf import BiasedMF
from datalever.plugins import Catalogue


def _plugins() -> dict[str, type[Learner]]:
    """The plugins' recommenders (see :mod:`datalever.plugins`)."""
    from datalever import plugins

    return {n: c for n, c in plugins.learners().items() if c.task == "recommendation"}


#: The built-in recommenders, and plugins' (loaded on first use). The adapters of users' own
#: models (:mod:`datalever.learners.adapters`) join them in :data:`datalever.tasks.LEARNERS`.
LEARNERS: dict[str, type[Learner]] = Catalogue(
    {
        cls.name: cls
        for cls in (
            GlobalMean,
            ItemMean,
            Popularity,
            BiasedMF,
            UserKNN,
            ItemKNN,
            CenteredItemKNN,
            EASE,
        )
    },
    _plugins,
)


def check_learner(name: str, params: Mapping[str, Any]) -> LearnerConfig:
    """The learner's parameters checked by its typed config, before anything runs: an unknown
    learner or parameter, or a value of the wrong type or outside its range, is refused with
    one paragraph naming the learner, the parameter, the value and what it accepts."""
    if not isinstance(name, str) or name not in LEARNERS:
        raise DataleverError(
            f"Unknown learner {name!r}."
            if isinstance(name, str)
            else f"Unknown learner {show(name)}.",
            f"use one of: {', '.join(sorted(LEARNERS))}.",
        )
    return LEARNERS[name].Config.check(name, params)


def make_learner(name: str, params: Mapping[str, Any] | None = None) -> Learner:
    """The learner ``name`` built from its checked parameters."""
    config = check_learner(name, params or {})
    return LEARNERS[name](**config.model_dump())


__all__ = [
    "BiasedMF",
    "CenteredItemKNN",
    "Delta",
    "EASE",
    "GlobalMean",
    "ItemKNN",
    "ItemMean",
    "LEARNERS",
    "Learner",
    "LearnerConfig",
    "Model",
    "Popularity",
    "UserKNN",
    "check_learner",
    "make_learner",
]
