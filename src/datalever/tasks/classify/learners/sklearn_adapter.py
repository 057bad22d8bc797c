"""Any scikit-learn classifier (or any estimator with scikit-learn's ``fit`` / ``predict``
interface, such as XGBoost's or LightGBM's), named by its import path, as a learner (plain fits
only).

Scores are the estimator's ``predict_proba`` when it has one, else its ``decision_function``,
else its ``predict`` as one-hot votes. The estimator and its keyword arguments are checked when
the learner is built, so a spec that names a missing class, something that is not a classifier
(a scikit-learn regressor or transformer, or an object without ``fit`` and ``predict``), or a
keyword the class does not have, is refused before anything runs. Scenario keys include the
version of the package the estimator comes from.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
from pydantic import Field

from datalever.core.config import MAX_SEED, LearnerConfig, show
from datalever.errors import DataleverError
from datalever.learners.adapters._common import check_plain
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.naive_bayes import UninformedModel

#: The estimator when none is named: a strong, seeded baseline that takes sample weights.
DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"
#: How deep a parameter value may nest lists and tables.


class SklearnModel(ClassifierModel):
    """A fitted classifier whose scores are mapped onto all ``n_classes`` columns: the
    estimator knows only the classes it was fitted on (``classes_``, or the sorted training
    labels for an estimator without it); the others score lowest (probability 0, or ``-inf``
    for decision values and votes).

    ``scoring`` is ``"predict_proba"``, ``"decision_function"`` or ``"predict"`` (one-hot
    votes for the predicted class); ``True`` and ``False`` are read as the first two."""

    def __init__(
        self,
        estimator: Any,
        n_classes: int,
        scoring: str | bool,
        classes: np.ndarray | None = None,
    ) -> None:
        if isinstance(scoring, bool):
            scoring = "predict_proba" if scoring else "decision_function"
        self.estimator = estimator
        self.n_classes = n_classes
        self.scoring = scoring
        self.probabilistic = scoring == "predict_proba"
        fitted = getattr(estimator, "classes_", None)
        self.classes = np.asarray(fitted if fitted is not None else classes, dtype=np.int64)

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self.scoring == "predict_proba":
            present = self.estimator.predict_proba(X)
            return on_all_classes(present, self.classes, self.n_classes, 0.0)
        if self.scoring == "predict":
            predicted = np.asarray(self.estimator.predict(X)).astype(np.int64).reshape(-1)
            votes = (predicted[:, None] == self.classes[None, :]).astype(np.float64)
            return on_all_classes(votes, self.classes, self.n_classes, -np.inf)
        d = np.asarray(self.estimator.decision_function(X), dtype=np.float64)
        if d.ndim == 1:  # two classes: one value, positive for classes_[1]
            d = np.column_stack([-d, d])
        return on_all_classes(d, self.classes, self.n_classes, -np.inf)


class OneClassModel(ClassifierModel):
    """The model of a training set with a single class (scikit-learn's classifiers refuse to
    fit one): that class scores 1, the others lowest."""

    def __init__(self, label: int, n_classes: int, probabilistic: bool) -> None:
        self.label, self.n_classes = label, n_classes
        self.lowest = 0.0 if probabilistic else -np.inf

    def scores(self, X: np.ndarray) -> np.ndarray:
        out = np.full((len(X), self.n_classes), self.lowest)
        out[:, self.label] = 1.0
        return out


def on_all_classes(
    scores: np.ndarray, classes: np.ndarray, n_classes: int, fill: float
) -> np.ndarray:
    """Scores over the fitted ``classes`` as columns of all ``n_classes`` (``fill`` for the
    others)."""
    out = np.full((len(scores), n_classes), fill)
    out[:, classes] = scores
    return out


def fit_estimator(
    estimator: Any, train: ExampleSet, probabilistic: bool, scoring: str | None = None
) -> ClassifierModel:
    """Fit ``estimator`` (a fresh, unfitted instance) on ``train``; ``scoring`` is how the
    fitted estimator scores (see :class:`SklearnModel`; by default from ``probabilistic``)."""
    if len(train) == 0:
        return UninformedModel(train.n_classes, probabilistic)
    labels = np.unique(train.y)
    if len(labels) == 1:
        return OneClassModel(int(labels[0]), train.n_classes, probabilistic)
    try:
        estimator.fit(train.X, train.y)
    except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
        name = f"{type(estimator).__module__}.{type(estimator).__name__}"
        raise DataleverError(
            f"The estimator {name!r} failed to fit the training examples: {show(str(e))}.",
            "give it parameters that fit this data (see the estimator's documentation), or "
            "use another estimator.",
        ) from None
    if scoring is None:
        scoring = "predict_proba" if probabilistic else "decision_function"
    return SklearnModel(estimator, train.n_classes, scoring, labels)


class SklearnClassifier(Classifier):
    """A scikit-learn classifier (``estimator``, such as
    ``"sklearn.ensemble.RandomForestClassifier"``, or any estimator with the same interface)
    built with the keyword arguments ``params``. Its scores are ``predict_proba`` when the
    configured estimator has one, else ``decision_function``, else one-hot ``predict`` votes.

    ``probabilistic`` depends on the estimator (and, as for ``SVC(probability=...)``, on its
    parameters), so unlike other classifiers it is set per instance in ``__init__``; the
    class attribute keeps the family's default, and only instances can be asked.
    """

    name = "sklearn"

    class Config(LearnerConfig):
        estimator: str = Field(
            DEFAULT_ESTIMATOR,
            max_length=200,
            pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
            description="The import path of a scikit-learn classifier class (or any class "
            "with fit and predict_proba, decision_function or predict).",
            json_schema_extra={"accepts": f'an import path such as "{DEFAULT_ESTIMATOR}"'},
        )
        params: dict[str, Any] | None = Field(
            None,
            description="Keyword arguments for the estimator's constructor (numbers, strings, "
            "booleans, lists and tables); unset: the estimator's defaults.",
            json_schema_extra={"accepts": "a table of the estimator's keyword arguments"},
        )
        seed: int | None = Field(
            None,
            ge=0,
            le=MAX_SEED,
            description="The estimator's random_state (0 when unset), when it takes one and "
            "params do not set it; unused otherwise.",
            json_schema_extra={"accepts": f"an integer from 0 to {MAX_SEED}"},
        )

    def __init__(
        self,
        estimator: str = DEFAULT_ESTIMATOR,
        params: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        c = self.configure(estimator=estimator, params=params, seed=seed)
        self.estimator: str = c.estimator
        # Not ``self.params``, which would hide :meth:`params`.
        self.estimator_params: dict[str, Any] | None = c.params
        self.seed: int | None = c.seed
        self._class = _resolve(self.estimator)
        _check_params(self.estimator, self._class, self.estimator_params or {})
        sample = self._build()
        #: How the fitted estimator scores: predict_proba, decision_function or predict.
        self.scoring: str = _check_classifier(self.estimator, sample)
        self.probabilistic: bool = self.scoring == "predict_proba"  # type: ignore[misc]

    def params(self) -> dict:
        """The constructor parameters as given (not ``probabilistic``, which follows from
        them)."""
        return {"estimator": self.estimator, "params": self.estimator_params, "seed": self.seed}

    def key_variant(self) -> str:
        """The version of the package the estimator comes from (scikit-learn's, or
        another's) decides the numbers too."""
        from datalever.learners.adapters._common import code_version

        return code_version(self._class)

    def _kwargs(self) -> dict[str, Any]:
        """The estimator's keyword arguments: ``params``, and ``random_state`` from the seed
        when the estimator takes one that ``params`` leave unset."""
        kwargs = dict(self.estimator_params or {})
        if "random_state" in _signature_names(self._class) and "random_state" not in kwargs:
            kwargs["random_state"] = 0 if self.seed is None else self.seed
        return kwargs

    def _build(self) -> Any:
        try:
            return self._class(**self._kwargs())
        except (TypeError, ValueError) as e:
            raise DataleverError(
                f"The estimator {self.estimator!r} cannot be built with params "
                f"{show(self.estimator_params)}: {e}.",
                "give keyword arguments the estimator accepts.",
            ) from None

    def fit(self, train: ExampleSet) -> ClassifierModel:
        return fit_estimator(self._build(), train, self.probabilistic, self.scoring)

    def check(self, data: Any) -> None:
        """Fit once on a small stratified sample of ``data`` (up to 20 examples a class), so
        parameters the estimator refuses only when fitting are refused before a run starts."""
        labels = data.records["label"].to_numpy()
        rng = np.random.default_rng(0)
        sample = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:20] for c in np.unique(labels)]
        )
        model = self.fit(data.training_set(np.sort(sample)))
        try:
            model.scores(data.features[sample[:5]])
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
            raise DataleverError(
                f"The estimator {self.estimator!r} failed to score examples: {show(str(e))}.",
                "give it parameters that fit this data, or use another estimator.",
            ) from None


def _resolve(path: str) -> type:
    """The class at ``path``, or an error saying what it is instead."""
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise DataleverError(
            f"The estimator {path!r} cannot be found: there is no module {module_name!r}.",
            'give the full import path of a classifier, such as "sklearn.ensemble.'
            'RandomForestClassifier" (and install the package that provides it).',
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise DataleverError(
            f"The estimator {path!r} cannot be found: {module_name!r} has no {attr!r}.",
            "check the class name's spelling and case.",
        )
    if not inspect.isclass(cls):
        raise DataleverError(
            f"The estimator {path!r} is not a class.",
            "give the import path of a scikit-learn classifier class.",
        )
    missing = [m for m in ("fit", "predict") if not callable(getattr(cls, m, None))]
    if missing:
        raise DataleverError(
            f"The estimator {path!r} is not a classifier: it has no {' or '.join(missing)}.",
            "give the import path of a scikit-learn classifier class (or one with fit and "
            "predict).",
        )
    return cls


def _signature_names(cls: type) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return {}


def _check_params(path: str, cls: type, params: dict[str, Any]) -> None:
    """Refuse keywords the estimator does not take, and values that are not JSON-like."""
    accepted = _signature_names(cls)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(k for k in params if k not in accepted)
    if unknown and not takes_any:
        known = [n for n, p in accepted.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        raise DataleverError(
            f"The estimator {path!r} has no parameter(s) {', '.join(map(show, unknown))}.",
            f"its parameters are: {', '.join(known) or 'none'}.",
        )
    check_plain(f"the estimator {path!r}", params)


def _check_classifier(path: str, estimator: Any) -> str:
    """Refuse an estimator that is not a classifier; the method that scores its classes."""
    from sklearn.base import BaseEstimator, is_classifier

    try:
        classifier = is_classifier(estimator)
    except Exception:  # an object that breaks scikit-learn's own tag lookup
        classifier = False
    # scikit-learn's own estimators say what they are; another library's estimator that does
    # not derive from BaseEstimator is taken as a classifier when it has fit and predict.
    if not classifier and isinstance(estimator, BaseEstimator):
        raise DataleverError(
            f"The estimator {path!r} is not a scikit-learn classifier (a regressor, "
            "transformer or something else).",
            "give the import path of a classifier, such as "
            '"sklearn.ensemble.RandomForestClassifier".',
        )
    # scikit-learn checks parameter values only when fitting; its own check, run now, refuses
    # a bad value (n_estimators = "x") before any scenario runs.
    validate = getattr(estimator, "_validate_params", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, TypeError) as e:
            raise DataleverError(
                f"The estimator {path!r} cannot take these params: {e}",
                "give values its documentation allows.",
            ) from None
    for method in ("predict_proba", "decision_function", "predict"):
        if callable(getattr(estimator, method, None)):
            return method
    raise DataleverError(
        f"The estimator {path!r} (with these params) has no predict_proba, "
        "decision_function or predict, so its classes cannot be scored.",
        "use a classifier that gives class probabilities, decision values or predictions.",
    )
