"""Any Surprise algorithm (a ``surprise.AlgoBase`` subclass such as ``surprise.SVD`` or
``surprise.KNNBasic``) as a recommender, with plain fits.

Each scenario's ratings become a Surprise trainset (``Dataset.load_from_df`` with the data's
rating scale, then ``build_full_trainset``), a fresh algorithm is fitted on it, and every score
the judge asks for is the algorithm's own ``predict(user, item).est``: the numbers Surprise
itself gives for the same ratings and seed. Surprise (``scikit-surprise``) is an optional extra.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import LearnerConfig, show
from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.adapters._common import (
    DOTTED,
    check_keywords,
    check_plain,
    failed,
    require,
    resolve,
    takes,
    version_of,
)
from datalever.learners.base import Learner, Model

EXTRA = "surprise"
DEFAULT_ALGORITHM = "surprise.SVD"
#: Surprise seeds numpy's legacy generator, which takes 32-bit seeds.
MAX_SURPRISE_SEED = 2**32 - 1


def algorithm_class(path: str) -> type:
    """The Surprise algorithm class at ``path``, or an error saying what is wrong."""
    surprise = require(
        "surprise", EXTRA, "The Surprise adapter (learner 'surprise')", "scikit-surprise"
    )
    cls = resolve(path, "the algorithm")
    if not (inspect.isclass(cls) and issubclass(cls, surprise.AlgoBase)):
        raise DataleverError(
            f"The algorithm {path!r} is not a Surprise algorithm (a surprise.AlgoBase subclass).",
            'give the import path of one, such as "surprise.SVD" or "surprise.KNNBasic".',
        )
    return cls


class SurpriseModel(Model):
    """A fitted Surprise algorithm: scores are its ``predict(user, item).est`` (clipped to the
    rating scale, and its default prediction for a user or item it never saw, as Surprise
    gives them)."""

    def __init__(self, algo: Any, n_items: int) -> None:
        self.algo, self.n_items = algo, n_items

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        predict = self.algo.predict
        pairs = zip(np.asarray(users).tolist(), np.asarray(items).tolist(), strict=True)
        return np.fromiter((predict(u, i).est for u, i in pairs), np.float64, count=len(users))


class SurpriseAdapter(Learner):
    """A Surprise algorithm named by its import path (``algorithm = "surprise.SVD"``) and
    built with the keyword arguments ``params``; ``random_state`` comes from the seed when the
    algorithm takes one and ``params`` leave it unset. Plain fits only."""

    name = "surprise"
    predicts_ratings = True

    class Config(LearnerConfig):
        algorithm: str = Field(
            DEFAULT_ALGORITHM,
            max_length=200,
            pattern=DOTTED,
            description="The import path of a Surprise algorithm class (surprise.AlgoBase).",
            json_schema_extra={"accepts": 'an import path such as "surprise.SVD"'},
        )
        params: dict[str, Any] | None = Field(
            None,
            description="Keyword arguments for the algorithm (numbers, strings, booleans, "
            "lists and tables, such as sim_options); unset: its defaults.",
            json_schema_extra={"accepts": "a table of the algorithm's keyword arguments"},
        )
        seed: int | None = Field(
            None,
            ge=0,
            le=MAX_SURPRISE_SEED,
            description="The algorithm's random_state (the spec's seed when unset), when it "
            "takes one and params do not set it.",
            json_schema_extra={"accepts": f"an integer from 0 to {MAX_SURPRISE_SEED}"},
        )

        @model_validator(mode="after")
        def _resolvable(self) -> SurpriseAdapter.Config:
            """The algorithm exists and takes these keywords: refused when the spec is
            checked, before anything runs."""
            cls = algorithm_class(self.algorithm)
            owner = f"The algorithm {self.algorithm!r}"
            check_keywords(owner, cls, self.params or {})
            check_plain(owner, self.params or {})
            return self

    def __init__(
        self,
        algorithm: str = DEFAULT_ALGORITHM,
        params: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        c = self.configure(algorithm=algorithm, params=params, seed=seed)
        self.algorithm: str = c.algorithm
        # Not ``self.params``, which would hide :meth:`params`.
        self.algorithm_params: dict[str, Any] | None = c.params
        self.seed: int | None = c.seed
        self._class = algorithm_class(self.algorithm)
        self._build()  # a value the constructor refuses is refused now

    def params(self) -> dict:
        return {"algorithm": self.algorithm, "params": self.algorithm_params, "seed": self.seed}

    def key_variant(self) -> str:
        """Surprise's version decides the numbers too."""
        return f"scikit-surprise=={version_of('scikit-surprise')}"

    def _kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.algorithm_params or {})
        if takes(self._class, "random_state") and "random_state" not in kwargs:
            kwargs["random_state"] = 0 if self.seed is None else self.seed
        if takes(self._class, "verbose") and "verbose" not in kwargs:
            kwargs["verbose"] = False  # KNN algorithms print while fitting by default
        return kwargs

    def _build(self) -> Any:
        try:
            return self._class(**self._kwargs())
        except Exception as e:
            raise DataleverError(
                f"The algorithm {self.algorithm!r} cannot be built with params "
                f"{show(self.algorithm_params)}: {type(e).__name__}: {show(str(e))}.",
                "give keyword arguments the algorithm accepts (see Surprise's documentation).",
            ) from None

    def fit(self, train: TrainingSet) -> SurpriseModel:
        algo = self._build()
        try:
            algo.fit(trainset(train))
        except Exception as e:
            raise failed(f"The algorithm {self.algorithm!r}", "fit the ratings", e) from None
        return SurpriseModel(algo, train.n_items)

    def check(self, data: Any) -> None:
        """Fit once on a small sample of ``data``, so a parameter Surprise refuses only when
        fitting (an unknown similarity name) is refused before a run starts."""
        sample = data.training_set(np.arange(min(len(data.records), 2_000)))
        model = self.fit(sample)
        try:
            model.predict(sample.users[:5], sample.items[:5])
        except Exception as e:
            raise failed(f"The algorithm {self.algorithm!r}", "predict ratings", e) from None


def trainset(train: TrainingSet) -> Any:
    """``train`` as a Surprise trainset (raw ids are datalever's user and item codes)."""
    import pandas as pd
    import surprise

    frame = pd.DataFrame(
        {
            "user": np.asarray(train.users, dtype=np.int64),
            "item": np.asarray(train.items, dtype=np.int64),
            "rating": np.asarray(train.ratings, dtype=np.float64),
        }
    )
    reader = surprise.Reader(rating_scale=tuple(float(r) for r in train.rating_scale))
    return surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
