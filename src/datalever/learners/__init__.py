"""Learners (model recipes) and the catalogue the spec names them from."""

from __future__ import annotations

import inspect
from typing import Any

from datalever.errors import DataleverError
from datalever.learners.base import Delta, Learner, Model
from datalever.learners.baselines import GlobalMean, ItemMean, Popularity
from datalever.learners.ease import EASE
from datalever.learners.knn import ItemKNN, UserKNN
from datalever.learners.knn_centered import CenteredItemKNN
from datalever.learners.mf import BiasedMF

LEARNERS: dict[str, type[Learner]] = {
    cls.name: cls
    for cls in (GlobalMean, ItemMean, Popularity, BiasedMF, UserKNN, ItemKNN, CenteredItemKNN, EASE)
}


def check_learner(name: str, params: dict[str, Any]) -> None:
    """Raise a clear error for an unknown learner or parameter, before anything runs."""
    if name not in LEARNERS:
        raise DataleverError(
            f"Unknown learner {name!r}.", f"use one of: {', '.join(sorted(LEARNERS))}."
        )
    accepted = set(inspect.signature(LEARNERS[name].__init__).parameters) - {"self"}
    unknown = set(params) - accepted
    if unknown:
        raise DataleverError(
            f"The learner {name!r} has no parameter(s) {', '.join(sorted(unknown))}.",
            f"its parameters are: {', '.join(sorted(accepted)) or 'none'}.",
        )


def make_learner(name: str, params: dict[str, Any] | None = None) -> Learner:
    params = params or {}
    check_learner(name, params)
    try:
        return LEARNERS[name](**params)
    except (TypeError, ValueError) as e:
        raise DataleverError(
            f"The learner {name!r} rejected its parameters: {e}.", "check their values."
        ) from None


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
    "Model",
    "Popularity",
    "UserKNN",
    "check_learner",
    "make_learner",
]
