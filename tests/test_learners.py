"""Baseline learners on a worked example, and biased MF against a pure-Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.data.contributions import TrainingSet
from datalever.learners.baselines import GlobalMean, ItemMean, Popularity
from datalever.learners.mf import BiasedMF, BiasedMFModel, _sgd

# ----------------------------------------------------------------------- worked example
#
# 4 users, 4 items; user 3 has no records, item 3 has none.
#   user 0: item 0 -> 5, item 1 -> 3
#   user 1: item 0 -> 4, item 2 -> 2
#   user 2: item 0 -> 3
# global mean = (5 + 3 + 4 + 2 + 3) / 5 = 17 / 5 = 3.4
# item means: item 0 = (5 + 4 + 3) / 3 = 4, item 1 = 3, item 2 = 2, item 3 = (none) 3.4
# popularity: item 0 = 3, item 1 = 1, item 2 = 1, item 3 = 0

TRAIN = TrainingSet(
    users=np.array([0, 0, 1, 1, 2], dtype=np.int32),
    items=np.array([0, 1, 0, 2, 0], dtype=np.int32),
    ratings=np.array([5.0, 3.0, 4.0, 2.0, 3.0]),
    n_users=4,
    n_items=4,
)
ALL_USERS = np.arange(4)


def grid(n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)


def test_global_mean():
    model = GlobalMean().fit(TRAIN)
    assert model.predict(np.array([0, 3, 2]), np.array([0, 3, 1])) == pytest.approx([3.4] * 3)
    assert model.score_users(ALL_USERS) == pytest.approx(np.full((4, 4), 3.4))


def test_global_mean_of_nothing_is_the_middle_of_the_scale():
    empty = TRAIN.subset(np.zeros(5, dtype=bool))
    # (1 + 5) / 2 = 3
    assert GlobalMean().fit(empty).predict(np.array([0]), np.array([0])) == pytest.approx([3.0])


def test_item_mean():
    model = ItemMean().fit(TRAIN)
    # item 3 is unrated: it gets the global mean 3.4
    assert model.predict(np.array([3, 3, 3, 3]), np.arange(4)) == pytest.approx([4, 3, 2, 3.4])
    scores = model.score_users(ALL_USERS)
    assert scores.shape == (4, 4)
    assert scores == pytest.approx(np.tile([4, 3, 2, 3.4], (4, 1)))


def test_item_mean_after_removing_records():
    # drop user 0's records: ratings 4, 2, 3 -> global mean 3; item 0 = (4 + 3) / 2 = 3.5,
    # item 1 now unrated -> 3, item 2 = 2, item 3 -> 3
    model = ItemMean().fit(TRAIN.subset(TRAIN.users != 0))
    assert model.predict(np.zeros(4, dtype=int), np.arange(4)) == pytest.approx([3.5, 3, 2, 3])


def test_popularity():
    learner = Popularity()
    assert not learner.predicts_ratings
    model = learner.fit(TRAIN)
    assert model.predict(np.array([0, 1, 2, 3]), np.arange(4)).tolist() == [3, 1, 1, 0]
    assert model.score_users(np.array([1, 3])).tolist() == [[3, 1, 1, 0]] * 2


def test_baseline_score_users_equals_predict_on_the_grid():
    uu, ii = grid(4, 4)
    for learner in (GlobalMean(), ItemMean(), Popularity()):
        model = learner.fit(TRAIN)
        expected = model.predict(uu, ii).reshape(4, 4)
        np.testing.assert_array_equal(model.score_users(ALL_USERS), expected)


# ------------------------------------------------------------------------- biased MF


def reference_sgd(users, items, ratings, mu, bu, bi, pu, qi, n_epochs, lr, reg):
    """Surprise's SVD update, in plain Python on lists of floats (returns new parameters)."""
    bu, bi = [float(x) for x in bu], [float(x) for x in bi]
    pu = [[float(x) for x in row] for row in pu]
    qi = [[float(x) for x in row] for row in qi]
    n_factors = len(pu[0])
    for _ in range(n_epochs):
        for u, i, r in zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True):
            dot = 0.0
            for f in range(n_factors):
                dot += qi[i][f] * pu[u][f]
            err = r - (mu + bu[u] + bi[i] + dot)
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            for f in range(n_factors):
                puf, qif = pu[u][f], qi[i][f]
                pu[u][f] += lr * (err * qif - reg * puf)
                qi[i][f] += lr * (err * puf - reg * qif)
    return np.array(bu), np.array(bi), np.array(pu), np.array(qi)


MASK64 = 2**64 - 1


def reference_mix64(x: int) -> int:
    """SplitMix64's finaliser on a Python int."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def reference_order(train: TrainingSet, seed: int) -> list[int]:
    """The visiting order: by hash of (user, item, seed), then user, item, input position."""

    def key(j: int) -> tuple[int, int, int, int]:
        u, i = int(train.users[j]), int(train.items[j])
        h = reference_mix64(reference_mix64(reference_mix64(seed % 2**64) ^ u) ^ i)
        return (h, u, i, j)

    return sorted(range(len(train)), key=key)


def reference_fit(train: TrainingSet, n_factors, n_epochs, lr, reg, init_std, seed):
    """BiasedMF.fit spelled out: the same draws from the seed, the records in the order of
    their hashed keys, then the reference SGD."""
    rng = np.random.default_rng(seed)
    pu = rng.normal(0, init_std, (train.n_users, n_factors))
    qi = rng.normal(0, init_std, (train.n_items, n_factors))
    order = reference_order(train, seed)
    mu = float(np.mean(train.ratings))
    bu, bi, pu, qi = reference_sgd(
        train.users[order],
        train.items[order],
        train.ratings[order],
        mu,
        np.zeros(train.n_users),
        np.zeros(train.n_items),
        pu,
        qi,
        n_epochs,
        lr,
        reg,
    )
    return mu, bu, bi, pu, qi


# The kernel computes in float32 (see ``mf._DTYPE``); the float64 reference agrees to about 1e-7.
F32_ATOL = 1e-6


def test_sgd_kernel_equals_reference():
    rng = np.random.default_rng(42)
    users = np.array([0, 1, 2, 0, 1, 2, 3, 0], dtype=np.int64)
    items = np.array([0, 0, 1, 2, 2, 3, 4, 4], dtype=np.int64)
    ratings = np.array([5.0, 4, 1, 3, 2, 5, 4, 1])
    mu = float(ratings.mean())
    pu = rng.normal(0, 0.1, (4, 3))
    qi = rng.normal(0, 0.1, (5, 3))
    bu, bi = rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 5)  # nonzero, to exercise every term
    expected = reference_sgd(users, items, ratings, mu, bu, bi, pu, qi, 7, 0.05, 0.1)
    got = [bu.copy(), bi.copy(), pu.copy(), qi.copy()]
    _sgd(users, items, ratings, mu, *got, 7, 0.05, 0.1)  # updates in place
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=F32_ATOL)
    # it actually moved the parameters
    assert not np.allclose(got[2], pu)


def test_fit_equals_reference_fit():
    learner = BiasedMF(n_factors=4, n_epochs=6, lr=0.05, reg=0.02, init_std=0.1, seed=3)
    model = learner.fit(TRAIN)
    mu, bu, bi, pu, qi = reference_fit(TRAIN, 4, 6, 0.05, 0.02, 0.1, 3)
    assert model.mu == pytest.approx(3.4)
    uu, ii = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 2, 0, 2])  # known users and items
    expected = np.clip(mu + bu[uu] + bi[ii] + (pu[uu] * qi[ii]).sum(axis=1), 1, 5)
    np.testing.assert_allclose(model.predict(uu, ii), expected, rtol=0, atol=F32_ATOL)


def test_unknown_users_and_items_get_the_known_terms_only():
    # user 3 and item 3 have no training records
    model = BiasedMF(n_factors=4, n_epochs=6, lr=0.05, seed=3).fit(TRAIN)
    mu, bu, bi, _, _ = reference_fit(TRAIN, 4, 6, 0.05, 0.02, 0.1, 3)
    # unknown user, known items: mu + b_i (no user bias, no factor product)
    got = model.predict(np.array([3, 3, 3]), np.array([0, 1, 2]))
    np.testing.assert_allclose(got, mu + bi[:3], rtol=0, atol=F32_ATOL)
    # known users, unknown item: mu + b_u
    got = model.predict(np.array([0, 1, 2]), np.array([3, 3, 3]))
    np.testing.assert_allclose(got, mu + bu[:3], rtol=0, atol=F32_ATOL)
    # both unknown: mu alone
    assert model.predict(np.array([3]), np.array([3])) == pytest.approx([mu], abs=F32_ATOL)


def test_predictions_are_clipped_to_the_scale():
    # Built directly: mu = 4, user 0 bias +3, user 1 bias -5, one factor product of 1.
    model = BiasedMFModel(
        mu=4.0,
        bu=np.array([3.0, -5.0, 0.0]),
        bi=np.array([0.0, 0.5]),
        pu=np.array([[1.0], [0.0], [1.0]]),
        qi=np.array([[1.0], [0.0]]),
        rating_scale=(1.0, 5.0),
        known_users=np.array([True, True, True]),
        known_items=np.array([True, True]),
    )
    # user 0 item 0: 4 + 3 + 0 + 1 = 8 -> 5; user 1 item 1: 4 - 5 + 0.5 + 0 = -0.5 -> 1
    # user 2 item 1: 4 + 0 + 0.5 + 0 = 4.5 (inside the scale)
    got = model.predict(np.array([0, 1, 2]), np.array([0, 1, 1]))
    assert got.tolist() == [5.0, 1.0, 4.5]
    assert model.score_users(np.array([0, 1, 2])).tolist() == [[5, 5], [1, 1], [5, 4.5]]


def test_fitted_predictions_stay_in_the_scale():
    # ratings only at the ends of the scale, with a large learning rate, push estimates out
    rng = np.random.default_rng(0)
    train = TrainingSet(
        rng.integers(0, 10, 200).astype(np.int32),
        rng.integers(0, 15, 200).astype(np.int32),
        rng.choice([1.0, 5.0], 200),
        10,
        15,
    )
    model = BiasedMF(n_factors=8, n_epochs=30, lr=0.1, reg=0.0, seed=1).fit(train)
    scores = model.score_users(np.arange(10))
    assert scores.min() >= 1.0 and scores.max() <= 5.0
    # the unclipped estimates do leave the scale, so the clipping is exercised
    raw = model.mu + model.bu[:, None] + model.bi[None, :] + model.pu @ model.qi.T
    assert raw.max() > 5.0 or raw.min() < 1.0


def test_same_seed_same_predictions():
    uu, ii = grid(4, 4)
    a = BiasedMF(n_factors=5, n_epochs=5, seed=7).fit(TRAIN).predict(uu, ii)
    b = BiasedMF(n_factors=5, n_epochs=5, seed=7).fit(TRAIN).predict(uu, ii)
    c = BiasedMF(n_factors=5, n_epochs=5, seed=8).fit(TRAIN).predict(uu, ii)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_score_users_equals_predict_on_the_full_grid():
    model = BiasedMF(n_factors=6, n_epochs=8, lr=0.05, seed=2).fit(TRAIN)
    uu, ii = grid(4, 4)
    expected = model.predict(uu, ii).reshape(4, 4)
    np.testing.assert_allclose(model.score_users(ALL_USERS), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.score_users(np.array([2, 0])), expected[[2, 0]], rtol=0, atol=1e-12
    )


def test_learner_params():
    learner = BiasedMF(n_factors=10, seed=4)
    assert learner.params() == {
        "n_factors": 10,
        "n_epochs": 20,
        "lr": 0.005,
        "reg": 0.02,
        "init_std": 0.1,
        "seed": 4,
        "backend": "auto",
        "device": None,
    }
