"""Biased matrix factorisation fitted by stochastic gradient descent.

The model and update rule are those of Surprise's ``SVD`` (Funk-style biased MF), with its
defaults: 100 factors, 20 epochs, learning rate 0.005, regularisation 0.02, factors initialised
from N(0, 0.1). Surprise visits the training ratings in the same order every epoch; we visit
them in one fixed order drawn from the seed, so the fit does not depend on how the input file
happened to be sorted. Estimates are clipped to the rating scale, as Surprise's ``predict`` does.
"""

from __future__ import annotations

import numba
import numpy as np

from datalever.data.contributions import TrainingSet
from datalever.learners.base import Learner, Model


@numba.njit(cache=True, fastmath=False)
def _sgd(users, items, ratings, mu, bu, bi, pu, qi, n_epochs, lr, reg):  # pragma: no cover
    n_factors = pu.shape[1]
    for _ in range(n_epochs):
        for j in range(users.shape[0]):
            u = users[j]
            i = items[j]
            dot = 0.0
            for f in range(n_factors):
                dot += qi[i, f] * pu[u, f]
            err = ratings[j] - (mu + bu[u] + bi[i] + dot)
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            for f in range(n_factors):
                puf = pu[u, f]
                qif = qi[i, f]
                pu[u, f] += lr * (err * qif - reg * puf)
                qi[i, f] += lr * (err * puf - reg * qif)


class BiasedMFModel(Model):
    def __init__(self, mu, bu, bi, pu, qi, rating_scale, known_users, known_items) -> None:
        self.mu, self.bu, self.bi, self.pu, self.qi = mu, bu, bi, pu, qi
        self.rating_scale = rating_scale
        self.n_items = len(bi)
        # Surprise leaves the terms of an unknown user or item out of the estimate; zeroing
        # their parameters does exactly that.
        self.bu = np.where(known_users, bu, 0.0)
        self.pu = np.where(known_users[:, None], pu, 0.0)
        self.bi = np.where(known_items, bi, 0.0)
        self.qi = np.where(known_items[:, None], qi, 0.0)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        est = self.mu + self.bu[users] + self.bi[items]
        est += np.einsum("ij,ij->i", self.pu[users], self.qi[items])
        return np.clip(est, *self.rating_scale)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        est = self.mu + self.bu[users][:, None] + self.bi[None, :] + self.pu[users] @ self.qi.T
        return np.clip(est, *self.rating_scale)


class BiasedMF(Learner):
    """Biased matrix factorisation (Surprise ``SVD`` defaults), fitted by SGD.

    >>> from datalever.learners import BiasedMF
    >>> learner = BiasedMF(n_factors=100, n_epochs=20, lr=0.005, reg=0.02, seed=0)
    """

    name = "biased_mf"

    def __init__(
        self,
        n_factors: int = 100,
        n_epochs: int = 20,
        lr: float = 0.005,
        reg: float = 0.02,
        init_std: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.init_std = init_std
        self.seed = seed

    def fit(self, train: TrainingSet) -> Model:
        rng = np.random.default_rng(self.seed)
        # Initial factors are drawn for every coded user and item, so a user's starting point
        # does not depend on who else is in the training set.
        pu = rng.normal(0, self.init_std, (train.n_users, self.n_factors))
        qi = rng.normal(0, self.init_std, (train.n_items, self.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        order = rng.permutation(len(train))
        mu = float(train.ratings.mean()) if len(train) else sum(train.rating_scale) / 2
        _sgd(
            train.users[order].astype(np.int64),
            train.items[order].astype(np.int64),
            train.ratings[order].astype(np.float64),
            mu,
            bu,
            bi,
            pu,
            qi,
            self.n_epochs,
            self.lr,
            self.reg,
        )
        known_users = np.bincount(train.users, minlength=train.n_users) > 0
        known_items = np.bincount(train.items, minlength=train.n_items) > 0
        return BiasedMFModel(mu, bu, bi, pu, qi, train.rating_scale, known_users, known_items)
