"""A LensKit (2025 and later) scoring component, or a whole LensKit pipeline, as a recommender
with plain fits.

Each scenario's ratings become a LensKit ``Dataset`` (``lenskit.data.from_interactions_df``;
user and item ids are datalever's codes), and a fresh component (``scorer = "lenskit.als.
BiasedMFScorer"`` with its configuration ``params``) or a fresh pipeline (``pipeline =
"module:function"``, a function returning an untrained ``lenskit.pipeline.Pipeline``) is
trained on it with ``TrainingOptions(rng=seed)`` (a component inside LensKit's own
``topn_pipeline``, whose history lookup gives scorers such as item KNN the user's ratings).
Scores are what LensKit answers, user by user: the pipeline's ``node`` (``"scorer"``, the
default) run with ``query`` and ``items``. A pair LensKit cannot score (NaN: a user or item
it never saw) ranks last. Scores rank items; they are not read as ratings (no RMSE).
LensKit (``lenskit``) is an optional extra.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import MAX_SEED, LearnerConfig, show
from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.adapters._common import (
    DOTTED,
    FUNCTION_PATH,
    check_keywords,
    check_plain,
    code_version,
    failed,
    require,
    resolve,
    version_of,
)
from datalever.learners.base import Learner, Model

EXTRA = "lenskit"
_PURPOSE = "The LensKit adapter (learner 'lenskit')"


def scorer_class(path: str) -> type:
    """The LensKit component class at ``path``, or an error saying what is wrong."""
    pipeline = require("lenskit.pipeline", EXTRA, _PURPOSE)
    cls = resolve(path, "the scorer")
    if not (inspect.isclass(cls) and issubclass(cls, pipeline.Component)):
        raise DataleverError(
            f"The scorer {path!r} is not a LensKit component (a lenskit.pipeline.Component "
            "subclass).",
            'give the import path of one, such as "lenskit.als.BiasedMFScorer" or '
            '"lenskit.knn.ItemKNNScorer".',
        )
    if not callable(getattr(cls, "train", None)):
        raise DataleverError(
            f"The scorer {path!r} is not trainable (it has no train method).",
            "give a LensKit scorer that learns from data.",
        )
    return cls


def pipeline_function(path: str) -> Any:
    """The function at ``path`` that builds a LensKit pipeline."""
    require("lenskit.pipeline", EXTRA, _PURPOSE)
    fn = resolve(path, "the pipeline function")
    if not callable(fn) or inspect.isclass(fn):
        raise DataleverError(
            f"The pipeline function {path!r} is not a function.",
            "give the import path of a function that returns an untrained "
            "lenskit.pipeline.Pipeline.",
        )
    return fn


class LensKitModel(Model):
    """A trained LensKit component or pipeline: scores come from LensKit, one call per user."""

    def __init__(self, score: Any, n_items: int) -> None:
        #: ``score(user, items: ItemList) -> ItemList`` with scores.
        self.score, self.n_items = score, n_items

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        from lenskit.data import ItemList

        users, items = np.asarray(users), np.asarray(items)
        out = np.full(len(users), -np.inf)
        order = np.argsort(users, kind="stable")
        starts = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1]])
        for begin, end in zip(starts, np.r_[starts[1:], len(order)], strict=True):
            at = order[begin:end]
            asked = items[at]
            result = self.score(int(users[at[0]]), ItemList(item_ids=asked))
            scores = _aligned(result, asked)
            out[at] = np.where(np.isnan(scores), -np.inf, scores)
        return out


def _aligned(result: Any, asked: np.ndarray) -> np.ndarray:
    """``result``'s scores in the order of ``asked`` (NaN for items it left out)."""
    ids = np.asarray(result.ids())
    scores = result.scores()
    if scores is None:
        raise DataleverError(
            "The LensKit scorer returned items without scores.",
            'name a scoring component, or the pipeline node that scores (node = "scorer").',
        )
    scores = np.asarray(scores, dtype=np.float64)
    if len(ids) == len(asked) and np.array_equal(ids, asked):
        return scores
    position = {int(i): k for k, i in enumerate(ids.tolist())}
    return np.array([scores[position[i]] if i in position else np.nan for i in asked.tolist()])


class LensKitAdapter(Learner):
    """A LensKit scorer (``scorer``, such as ``"lenskit.als.BiasedMFScorer"``, configured by
    ``params``) or pipeline (``pipeline = "module:function"``), trained with the seed. Plain
    fits only."""

    name = "lenskit"
    predicts_ratings = False

    class Config(LearnerConfig):
        scorer: str | None = Field(
            None,
            max_length=200,
            pattern=DOTTED,
            description="The import path of a LensKit scoring component class (unset when "
            "pipeline is given; lenskit.als.BiasedMFScorer when neither is).",
            json_schema_extra={"accepts": 'an import path such as "lenskit.als.BiasedMFScorer"'},
        )
        params: dict[str, Any] | None = Field(
            None,
            description="The scorer's configuration (its config fields, such as embedding_size "
            "or k); unset: its defaults. For a pipeline: keyword arguments of its function.",
            json_schema_extra={"accepts": "a table of the scorer's configuration"},
        )
        pipeline: str | None = Field(
            None,
            max_length=200,
            pattern=FUNCTION_PATH,
            description="The import path (module:function) of a function returning an "
            "untrained lenskit.pipeline.Pipeline.",
            json_schema_extra={"accepts": 'an import path such as "my_models:pipeline"'},
        )
        node: str = Field(
            "scorer",
            min_length=1,
            max_length=100,
            description="The pipeline node whose output (an ItemList with scores) ranks items.",
            json_schema_extra={"accepts": 'a node name such as "scorer"'},
        )
        seed: int | None = Field(
            None,
            ge=0,
            le=MAX_SEED,
            description="The training seed (TrainingOptions rng); the spec's seed when unset.",
            json_schema_extra={"accepts": f"an integer from 0 to {MAX_SEED}"},
        )

        @model_validator(mode="after")
        def _resolvable(self) -> LensKitAdapter.Config:
            """The scorer or pipeline exists and takes these parameters, checked before
            anything runs."""
            if self.scorer is not None and self.pipeline is not None:
                raise DataleverError(
                    "The learner 'lenskit' names both a scorer and a pipeline.",
                    "give one of them.",
                )
            params = self.params or {}
            check_plain("the learner 'lenskit'", params)
            if self.pipeline is not None:
                fn = pipeline_function(self.pipeline)
                check_keywords(f"The pipeline function {self.pipeline!r}", fn, params)
            else:
                cls = scorer_class(self.scorer or DEFAULT_SCORER)
                _config(cls, self.scorer or DEFAULT_SCORER, params)
            return self

    def __init__(
        self,
        scorer: str | None = None,
        params: dict[str, Any] | None = None,
        pipeline: str | None = None,
        node: str = "scorer",
        seed: int | None = None,
    ) -> None:
        c = self.configure(scorer=scorer, params=params, pipeline=pipeline, node=node, seed=seed)
        self.scorer: str | None = c.scorer
        self.scorer_params: dict[str, Any] | None = c.params
        self.pipeline: str | None = c.pipeline
        self.node: str = c.node
        self.seed: int | None = c.seed
        if self.pipeline is not None:
            self._fn = pipeline_function(self.pipeline)
        else:
            self._class = scorer_class(self.scorer or DEFAULT_SCORER)
            self._config = _config(self._class, self.scorer or DEFAULT_SCORER, c.params or {})

    def params(self) -> dict:
        return {
            "scorer": self.scorer,
            "params": self.scorer_params,
            "pipeline": self.pipeline,
            "node": self.node,
            "seed": self.seed,
        }

    def key_variant(self) -> str:
        """LensKit's (and for a pipeline, its function's package's) version decides the
        numbers too."""
        lenskit = f"lenskit=={version_of('lenskit')}"
        return lenskit if self.pipeline is None else f"{lenskit}|{code_version(self._fn)}"

    def _what(self) -> str:
        if self.pipeline is not None:
            return f"The LensKit pipeline {self.pipeline!r}"
        return f"The LensKit scorer {self.scorer or DEFAULT_SCORER!r}"

    def fit(self, train: TrainingSet) -> LensKitModel:
        from lenskit.training import TrainingOptions

        data = dataset(train)
        options = TrainingOptions(rng=0 if self.seed is None else self.seed)
        try:
            if self.pipeline is not None:
                pipe = self._fn(**(self.scorer_params or {}))
            else:
                # LensKit's own top-N pipeline around the component: its history lookup gives
                # scorers that need the user's ratings (item KNN) what they score from.
                from lenskit.pipeline import topn_pipeline

                pipe = topn_pipeline(self._class(self._config))
            pipe.train(data, options)
        except DataleverError:
            raise
        except Exception as e:
            raise failed(self._what(), "train on the ratings", e) from None
        node = self.node if self.pipeline is not None else "scorer"

        def score(user: int, items: Any) -> Any:
            return pipe.run(node, query=user, items=items)

        return LensKitModel(score, train.n_items)

    def check(self, data: Any) -> None:
        """Train once on a small sample and score a few items, so a pipeline without the
        ``node``, or a configuration LensKit refuses only when training, is refused first."""
        n = min(len(data.records), 2_000)
        sample = data.training_set(np.arange(n))
        model = self.fit(sample)
        try:
            model.predict(sample.users[:5], sample.items[:5])
        except DataleverError:
            raise
        except Exception as e:
            raise failed(self._what(), "score items", e) from None


DEFAULT_SCORER = "lenskit.als.BiasedMFScorer"


def _config(cls: type, path: str, params: dict[str, Any]) -> Any:
    """The component's configuration object from ``params``, checked by LensKit's own config
    class (a pydantic model or dataclass)."""
    config_class = getattr(cls, "config_class", None)
    config_type = config_class() if callable(config_class) else None
    if config_type is None:
        if params:
            raise DataleverError(
                f"The scorer {path!r} takes no configuration, but params {show(params)} were "
                "given.",
                "drop params.",
            )
        return None
    try:
        if hasattr(config_type, "model_validate"):
            return config_type.model_validate(params)
        return config_type(**params)
    except Exception as e:
        raise DataleverError(
            f"The scorer {path!r} cannot take the configuration {show(params)}: {show(str(e))}.",
            f"give fields of {config_type.__name__} (see LensKit's documentation).",
        ) from None


def dataset(train: TrainingSet) -> Any:
    """``train`` as a LensKit dataset (ids are datalever's user and item codes)."""
    import pandas as pd
    from lenskit.data import from_interactions_df

    frame = pd.DataFrame(
        {
            "user_id": np.asarray(train.users, dtype=np.int64),
            "item_id": np.asarray(train.items, dtype=np.int64),
            "rating": np.asarray(train.ratings, dtype=np.float64),
        }
    )
    return from_interactions_df(frame, user_col="user_id", item_col="item_id", rating_col="rating")
