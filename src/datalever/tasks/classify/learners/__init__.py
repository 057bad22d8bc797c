"""The classifiers a spec can name, by name."""

from __future__ import annotations

from datalever.plugins import Catalogue
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.function_adapter import PythonClassifier, TorchClassifier
from datalever.tasks.classify.learners.linear import LDA, RidgeClassifier
from datalever.tasks.classify.learners.logistic import LogisticRegression
from datalever.tasks.classify.learners.naive_bayes import GaussianNB, MultinomialNB
from datalever.tasks.classify.learners.prior import ClassPrior
from datalever.tasks.classify.learners.sklearn_adapter import SklearnClassifier


def _plugins() -> dict[str, type[Classifier]]:
    """The plugins' classifiers (see :mod:`datalever.plugins`)."""
    from datalever import plugins

    return {n: c for n, c in plugins.learners().items() if c.task == "classification"}


#: The built-in classifiers (with the scikit-learn adapter), and plugins' (loaded on first
#: use). The adapters of users' own functions and torch modules join them in
#: :data:`datalever.tasks.LEARNERS`.
LEARNERS: dict[str, type[Classifier]] = Catalogue(
    {
        cls.name: cls
        for cls in (
            ClassPrior,
            MultinomialNB,
            GaussianNB,
            RidgeClassifier,
            LDA,
            LogisticRegression,
            SklearnClassifier,
        )
    },
    _plugins,
)
#: The adapters of users' own classifiers.
CLASSIFIER_ADAPTERS = (PythonClassifier, TorchClassifier)

__all__ = [
    "CLASSIFIER_ADAPTERS",
    "LDA",
    "LEARNERS",
    "ClassPrior",
    "Classifier",
    "ClassifierModel",
    "GaussianNB",
    "LogisticRegression",
    "MultinomialNB",
    "PythonClassifier",
    "RidgeClassifier",
    "SklearnClassifier",
    "TorchClassifier",
]
