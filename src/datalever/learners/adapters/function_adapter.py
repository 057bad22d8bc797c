"""A user's own recommender as a learner, with plain fits: a Python function, or a PyTorch
module with its training function.

``python_recommender``: ``function = "my_models:fit"`` names ``fit(train, **params) ->
predict``, where ``train`` is a :class:`~datalever.data.contributions.TrainingSet` (coded
``users``, ``items``, ``ratings``, ``n_users``, ``n_items``) and ``predict(users, items)``
returns one score per pair (rating estimates: RMSE and MAE read them as ratings).

``torch_recommender``: ``model = "my_models:make"`` names ``make(n_users, n_items,
**model_params) -> torch.nn.Module`` whose ``forward(users, items)`` (int64 tensors) gives one
score per pair, and ``train = "my_models:train"`` names ``train(module, train_set,
**train_params)``, which trains the module in place (or returns the trained one). Torch's
generator is seeded before the module is built. Either function receives ``seed=`` when it
takes one that its params leave unset.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import MAX_SEED, LearnerConfig
from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.adapters._common import (
    FUNCTION_PATH,
    call,
    check_keywords,
    check_plain,
    code_version,
    failed,
    require,
    user_function,
    version_of,
)
from datalever.learners.base import Learner, Model

#: How many pairs a torch module scores at once (bounds the memory of one forward pass).
CHUNK = 1 << 20


def _path_field(description: str, example: str) -> Any:
    return Field(
        max_length=200,
        pattern=FUNCTION_PATH,
        description=description,
        json_schema_extra={"accepts": f'an import path such as "{example}"'},
    )


def _params_field(of: str) -> Any:
    return Field(
        None,
        description=f"Keyword arguments for {of} (numbers, strings, booleans, lists, tables).",
        json_schema_extra={"accepts": f"a table of {of}'s keyword arguments"},
    )


def _seed_field() -> Any:
    return Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="The seed handed to the user's functions (the spec's seed when unset).",
        json_schema_extra={"accepts": f"an integer from 0 to {MAX_SEED}"},
    )


class FunctionModel(Model):
    """The ``predict`` a user's ``fit`` returned."""

    def __init__(self, predict: Any, n_items: int, owner: str) -> None:
        self._predict, self.n_items, self.owner = predict, n_items, owner

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        try:
            scores = self._predict(users, items)
        except DataleverError:
            raise
        except Exception as e:
            raise failed(self.owner, "score (user, item) pairs", e) from None
        return _scores(self.owner, scores, len(users))


def _scores(owner: str, scores: Any, n: int) -> np.ndarray:
    """The user's scores as a float array of length ``n``, or one paragraph saying why not."""
    try:
        out = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        out = None
    if out is None or len(out) != n:
        raise DataleverError(
            f"{owner} returned {type(scores).__name__} where {n} scores were asked for.",
            "return one number per (user, item) pair, as a numpy array or list.",
        )
    return out


class PythonRecommender(Learner):
    """A user's function ``fit(train, **params) -> predict`` (``function = "module:fit"``)."""

    name = "python_recommender"
    predicts_ratings = True

    class Config(LearnerConfig):
        function: str = _path_field(
            "The import path of fit(train, **params) -> predict(users, items).", "my_models:fit"
        )
        params: dict[str, Any] | None = _params_field("the function")
        seed: int | None = _seed_field()

        @model_validator(mode="after")
        def _resolvable(self) -> PythonRecommender.Config:
            fn = user_function(self.function, "the function")
            check_keywords(f"The function {self.function!r}", fn, self.params or {}, skip=1)
            check_plain(f"the function {self.function!r}", self.params or {})
            return self

    def __init__(
        self, function: str, params: dict[str, Any] | None = None, seed: int | None = None
    ) -> None:
        c = self.configure(function=function, params=params, seed=seed)
        self.function: str = c.function
        self.function_params: dict[str, Any] | None = c.params
        self.seed: int | None = c.seed
        self._fn = user_function(self.function, "the function")

    def params(self) -> dict:
        return {"function": self.function, "params": self.function_params, "seed": self.seed}

    def key_variant(self) -> str:
        """The function's code (its package's version, or its source) decides the numbers."""
        return code_version(self._fn)

    def fit(self, train: TrainingSet) -> FunctionModel:
        owner = f"The function {self.function!r}"
        predict = call(
            owner,
            "fit the ratings",
            self._fn,
            train,
            seed=self.seed,
            **(self.function_params or {}),
        )
        if not callable(predict):
            raise DataleverError(
                f"{owner} returned {type(predict).__name__}, not a predict function.",
                "return a function predict(users, items) -> scores.",
            )
        return FunctionModel(predict, train.n_items, owner)


class TorchModel(Model):
    """A trained torch module scoring (user, item) pairs, on the CPU or its device."""

    def __init__(self, module: Any, n_items: int, device: str, owner: str) -> None:
        self.module, self.n_items, self.device, self.owner = module, n_items, device, owner

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        import torch

        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        parts = []
        try:
            with torch.no_grad():
                for start in range(0, len(users), CHUNK):
                    u = torch.as_tensor(users[start : start + CHUNK], device=self.device)
                    i = torch.as_tensor(items[start : start + CHUNK], device=self.device)
                    parts.append(self.module(u, i).detach().to("cpu", torch.float64).numpy())
        except Exception as e:
            raise failed(self.owner, "score (user, item) pairs", e) from None
        scores = np.concatenate(parts) if parts else np.empty(0)
        return _scores(self.owner, scores, len(users))


def torch_module(owner: str, made: Any) -> Any:
    """``made`` when it is a torch module, else one paragraph saying what it is."""
    import torch

    if not isinstance(made, torch.nn.Module):
        raise DataleverError(
            f"{owner} returned {type(made).__name__}, not a torch.nn.Module.",
            "return the module (torch.nn.Module) the adapter trains and scores with.",
        )
    return made


class TorchConfig(LearnerConfig):
    """The parameters both torch adapters take; each names its factory's signature in
    ``model`` and itself in ``learner``."""

    learner: ClassVar[str] = ""
    model: str = _path_field("The import path of the module factory.", "my_models:make")
    train: str = _path_field(
        "The import path of train(module, train_set, **train_params).", "my_models:train"
    )
    model_params: dict[str, Any] | None = _params_field("the model factory")
    train_params: dict[str, Any] | None = _params_field("the train function")
    device: str = Field(
        "cpu",
        pattern=r"^(cpu|cuda(:[0-9]{1,2})?)$",
        description="The torch device the module is trained and scored on.",
        json_schema_extra={"accepts": '"cpu", "cuda" or "cuda:N"'},
    )
    seed: int | None = _seed_field()

    @model_validator(mode="after")
    def _resolvable(self) -> TorchConfig:
        require("torch", "gpu", f"The learner {self.learner!r}")
        make = user_function(self.model, "the model factory")
        train = user_function(self.train, "the train function")
        check_keywords(f"The model factory {self.model!r}", make, self.model_params or {}, 2)
        check_keywords(f"The train function {self.train!r}", train, self.train_params or {}, 2)
        check_plain(f"the model factory {self.model!r}", self.model_params or {})
        check_plain(f"the train function {self.train!r}", self.train_params or {})
        return self


class TorchUserCode:
    """What both torch adapters do with their checked parameters: keep them, name them for
    scenario keys, and key on torch's version and the user's code."""

    def _keep(self, c: TorchConfig) -> None:
        self.model, self.train = c.model, c.train
        self.model_params: dict[str, Any] | None = c.model_params
        self.train_params: dict[str, Any] | None = c.train_params
        self.device: str = c.device
        self.seed: int | None = c.seed
        self.runs_on_gpu = self.device != "cpu"
        self._make = user_function(self.model, "the model factory")
        self._train = user_function(self.train, "the train function")

    def params(self) -> dict:
        return {
            "model": self.model,
            "train": self.train,
            "model_params": self.model_params,
            "train_params": self.train_params,
            "device": self.device,
            "seed": self.seed,
        }

    def key_variant(self) -> str:
        """Torch's version and the user's code decide the numbers."""
        return "|".join(
            [f"torch=={version_of('torch')}", code_version(self._make), code_version(self._train)]
        )


class TorchRecommender(TorchUserCode, Learner):
    """A torch module built by ``model`` and trained by ``train`` (import paths, see the module
    docstring); scores are its ``forward(users, items)``."""

    name = "torch_recommender"
    predicts_ratings = True

    class Config(TorchConfig):
        learner: ClassVar[str] = "torch_recommender"
        model: str = _path_field(
            "The import path of make(n_users, n_items, **model_params) -> torch.nn.Module.",
            "my_models:make",
        )

    def __init__(
        self,
        model: str,
        train: str,
        model_params: dict[str, Any] | None = None,
        train_params: dict[str, Any] | None = None,
        device: str = "cpu",
        seed: int | None = None,
    ) -> None:
        self._keep(
            self.configure(
                model=model,
                train=train,
                model_params=model_params,
                train_params=train_params,
                device=device,
                seed=seed,
            )
        )

    def fit(self, train: TrainingSet) -> TorchModel:
        module = fit_torch(self, (train.n_users, train.n_items), train)
        return TorchModel(module, train.n_items, self.device, f"The module of {self.model!r}")


def fit_torch(learner: Any, shape: tuple[int, int], train: Any) -> Any:
    """Build the learner's module for ``shape`` with torch seeded, train it on ``train``, and
    return it in evaluation mode (shared by the recommender and the classifier)."""
    import torch

    seed = 0 if learner.seed is None else learner.seed
    torch.manual_seed(seed)
    owner = f"The model factory {learner.model!r}"
    module = torch_module(
        owner,
        call(
            owner,
            "build the module",
            learner._make,
            *shape,
            seed=seed,
            **(learner.model_params or {}),
        ),
    )
    module = module.to(learner.device)
    trainer = f"The train function {learner.train!r}"
    trained = call(
        trainer,
        "train the module",
        learner._train,
        module,
        train,
        seed=seed,
        **(learner.train_params or {}),
    )
    if trained is not None:
        module = torch_module(trainer, trained)
    return module.eval()
