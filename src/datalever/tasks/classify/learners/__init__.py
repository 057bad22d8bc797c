"""The classifiers a spec can name, by name."""

from __future__ import annotations

from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.linear import LDA, RidgeClassifier
from datalever.tasks.classify.learners.logistic import LogisticRegression
from datalever.tasks.classify.learners.naive_bayes import GaussianNB, MultinomialNB
from datalever.tasks.classify.learners.prior import ClassPrior
from datalever.tasks.classify.learners.sklearn_adapter import SklearnClassifier

LEARNERS: dict[str, type[Classifier]] = {
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
}

__all__ = [
    "LDA",
    "LEARNERS",
    "ClassPrior",
    "Classifier",
    "ClassifierModel",
    "GaussianNB",
    "LogisticRegression",
    "MultinomialNB",
    "RidgeClassifier",
    "SklearnClassifier",
]
