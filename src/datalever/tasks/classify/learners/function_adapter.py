"""A user's own classifier as a learner, with plain fits: a Python function, or a PyTorch
module with its training function.

``python_classifier``: ``function = "my_models:fit"`` names ``fit(train, **params) ->
predict``, where ``train`` is an :class:`~datalever.tasks.classify.examples.ExampleSet`
(features ``X``, class codes ``y`` in ``0..n_classes-1``, ``n_classes``) and ``predict(X)``
returns scores of shape ``(len(X), n_classes)``: class probabilities when ``probabilistic``
(the default), decision values otherwise.

``torch_classifier``: ``model = "my_models:make"`` names ``make(n_features, n_classes,
**model_params) -> torch.nn.Module`` whose ``forward(X)`` (float32) gives one logit per class,
and ``train = "my_models:train"`` names ``train(module, train_set, **train_params)``, which
trains it in place (or returns the trained module). Scores are the softmax of the logits when
``probabilistic`` (the default), the logits otherwise. Torch is seeded before the module is
built, and either function receives ``seed=`` when it takes one its params leave unset.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import LearnerConfig
from datalever.errors import DataleverError
from datalever.learners.adapters._common import (
    call,
    check_keywords,
    check_plain,
    code_version,
    failed,
    user_function,
)
from datalever.learners.adapters.function_adapter import (
    CHUNK,
    TorchConfig,
    TorchUserCode,
    _params_field,
    _path_field,
    _seed_field,
    fit_torch,
)
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.naive_bayes import UninformedModel


def _probabilistic_field() -> Any:
    return Field(
        True,
        description="True when the scores are class probabilities (so log-loss applies).",
        json_schema_extra={"accepts": "true or false"},
    )


def checked_scores(owner: str, scores: Any, n: int, n_classes: int) -> np.ndarray:
    """The user's scores as an ``(n, n_classes)`` float array, or a paragraph saying why not."""
    try:
        out = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        out = None
    if out is None or out.shape != (n, n_classes):
        shape = None if out is None else out.shape
        raise DataleverError(
            f"{owner} returned scores of shape {shape} for {n} examples of {n_classes} classes.",
            f"return an array of shape (n_examples, n_classes) = ({n}, {n_classes}).",
        )
    return out


class FunctionClassifierModel(ClassifierModel):
    """The ``predict`` a user's ``fit`` returned."""

    def __init__(self, predict: Any, n_classes: int, owner: str) -> None:
        self._predict, self.n_classes, self.owner = predict, n_classes, owner

    def scores(self, X: np.ndarray) -> np.ndarray:
        try:
            scores = self._predict(X)
        except DataleverError:
            raise
        except Exception as e:
            raise failed(self.owner, "score examples", e) from None
        return checked_scores(self.owner, scores, len(X), self.n_classes)


class PythonClassifier(Classifier):
    """A user's function ``fit(train, **params) -> predict`` (``function = "module:fit"``).

    ``probabilistic`` is a parameter, so unlike other classifiers it is set per instance; the
    class attribute keeps the family's default."""

    name = "python_classifier"

    class Config(LearnerConfig):
        function: str = _path_field(
            "The import path of fit(train, **params) -> predict(X).", "my_models:fit"
        )
        params: dict[str, Any] | None = _params_field("the function")
        probabilistic: bool = _probabilistic_field()
        seed: int | None = _seed_field()

        @model_validator(mode="after")
        def _resolvable(self) -> PythonClassifier.Config:
            fn = user_function(self.function, "the function")
            check_keywords(f"The function {self.function!r}", fn, self.params or {}, skip=1)
            check_plain(f"the function {self.function!r}", self.params or {})
            return self

    def __init__(
        self,
        function: str,
        params: dict[str, Any] | None = None,
        probabilistic: bool = True,
        seed: int | None = None,
    ) -> None:
        c = self.configure(function=function, params=params, probabilistic=probabilistic, seed=seed)
        self.function: str = c.function
        self.function_params: dict[str, Any] | None = c.params
        self.probabilistic: bool = c.probabilistic  # type: ignore[misc]
        self.seed: int | None = c.seed
        self._fn = user_function(self.function, "the function")

    def params(self) -> dict:
        return {
            "function": self.function,
            "params": self.function_params,
            "probabilistic": self.probabilistic,
            "seed": self.seed,
        }

    def key_variant(self) -> str:
        return code_version(self._fn)

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        owner = f"The function {self.function!r}"
        predict = call(
            owner,
            "fit the examples",
            self._fn,
            train,
            seed=self.seed,
            **(self.function_params or {}),
        )
        if not callable(predict):
            raise DataleverError(
                f"{owner} returned {type(predict).__name__}, not a predict function.",
                "return a function predict(X) -> scores of shape (len(X), n_classes).",
            )
        return FunctionClassifierModel(predict, train.n_classes, owner)


class TorchClassifierModel(ClassifierModel):
    """A trained torch module: softmax of its logits (or the logits) for every class."""

    def __init__(
        self, module: Any, n_classes: int, probabilistic: bool, device: str, owner: str
    ) -> None:
        self.module, self.n_classes, self.probabilistic = module, n_classes, probabilistic
        self.device, self.owner = device, owner

    def scores(self, X: np.ndarray) -> np.ndarray:
        import torch

        rows = max(1, CHUNK // max(1, X.shape[1]))
        parts = []
        try:
            with torch.no_grad():
                for start in range(0, len(X), rows):
                    x = torch.as_tensor(X[start : start + rows], dtype=torch.float32)
                    logits = self.module(x.to(self.device)).to("cpu", torch.float64)
                    parts.append((logits.softmax(dim=1) if self.probabilistic else logits).numpy())
        except Exception as e:
            raise failed(self.owner, "score examples", e) from None
        scores = np.concatenate(parts) if parts else np.empty((0, self.n_classes))
        return checked_scores(self.owner, scores, len(X), self.n_classes)


class TorchClassifier(TorchUserCode, Classifier):
    """A torch module built by ``model`` and trained by ``train`` (see the module docstring)."""

    name = "torch_classifier"
    runs_on_gpu: bool = False
    probabilistic: ClassVar[bool] = True

    class Config(TorchConfig):
        learner: ClassVar[str] = "torch_classifier"
        model: str = _path_field(
            "The import path of make(n_features, n_classes, **model_params) -> torch.nn.Module.",
            "my_models:make",
        )
        probabilistic: bool = _probabilistic_field()

    def __init__(
        self,
        model: str,
        train: str,
        model_params: dict[str, Any] | None = None,
        train_params: dict[str, Any] | None = None,
        probabilistic: bool = True,
        device: str = "cpu",
        seed: int | None = None,
    ) -> None:
        c = self.configure(
            model=model,
            train=train,
            model_params=model_params,
            train_params=train_params,
            probabilistic=probabilistic,
            device=device,
            seed=seed,
        )
        self._keep(c)
        self.probabilistic: bool = c.probabilistic  # type: ignore[misc]

    def params(self) -> dict:
        return {**super().params(), "probabilistic": self.probabilistic}

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        module = fit_torch(self, (train.n_features, train.n_classes), train)
        return TorchClassifierModel(
            module,
            train.n_classes,
            self.probabilistic,
            self.device,
            f"The module of {self.model!r}",
        )
