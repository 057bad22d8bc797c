"""Adapters that make a user's own recommender a datalever learner (plain fits, no fast path):
any Surprise algorithm, a LensKit scorer or pipeline, a Python function, a PyTorch module.

The libraries they wrap are optional extras, imported only when an adapter is built, so the
catalogue lists every adapter and naming one whose library is missing says what to install.
"""

from __future__ import annotations

from datalever.learners.adapters.function_adapter import PythonRecommender, TorchRecommender
from datalever.learners.adapters.lenskit_adapter import LensKitAdapter
from datalever.learners.adapters.surprise_adapter import SurpriseAdapter

#: The recommendation adapters, as the catalogue lists them.
RECOMMENDER_ADAPTERS = (SurpriseAdapter, LensKitAdapter, PythonRecommender, TorchRecommender)

__all__ = [
    "RECOMMENDER_ADAPTERS",
    "LensKitAdapter",
    "PythonRecommender",
    "SurpriseAdapter",
    "TorchRecommender",
]
