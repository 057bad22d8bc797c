"""Multinomial logistic regression (scikit-learn's L-BFGS solver), plain fits only.

Its optimum has no closed form in sufficient statistics, so every scenario is a fresh fit.
L-BFGS from a zero start is deterministic, so the learner needs no seed.
"""

from __future__ import annotations

import warnings

from pydantic import Field

from datalever.core.config import LearnerConfig
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.sklearn_adapter import fit_estimator


class LogisticRegression(Classifier):
    """L2-penalised multinomial logistic regression: scikit-learn's
    ``LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs")``. Scores are its class
    probabilities, 0 for classes absent from the training set."""

    name = "logistic"

    class Config(LearnerConfig):
        C: float = Field(
            1.0,
            gt=0,
            le=1e8,
            description="Inverse strength of the L2 penalty (smaller: stronger penalty).",
        )
        max_iter: int = Field(200, ge=1, le=100_000, description="Most L-BFGS iterations.")

    def __init__(self, C: float = 1.0, max_iter: int = 200) -> None:
        c = self.configure(C=C, max_iter=max_iter)
        self.C: float = c.C
        self.max_iter: int = c.max_iter

    def fit(self, train: ExampleSet) -> ClassifierModel:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression as Estimator

        estimator = Estimator(C=self.C, max_iter=self.max_iter, solver="lbfgs")
        # A sweep fits hundreds of models: scikit-learn's warning that L-BFGS stopped at
        # max_iter would be printed for each. The fit stands as the recipe says (at most
        # max_iter iterations, the same in every scenario); raise max_iter for a tighter optimum.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return fit_estimator(estimator, train, probabilistic=True)
