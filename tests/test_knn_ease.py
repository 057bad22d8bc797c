"""UserKNN/ItemKNN against Surprise's KNNBasic, hand-worked similarities, and EASE's closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datalever.data.contributions import TrainingSet
from datalever.learners.ease import EASE, regularized_inverse
from datalever.learners.knn import ItemKNN, UserKNN, similarity_matrix

surprise = pytest.importorskip("surprise")

N_USERS, N_ITEMS = 60, 80  # codes; the last few users and items have no training record


def _random_set(seed: int = 7, n: int = 1500, values=(1, 2, 3, 4, 5)) -> TrainingSet:
    """A few thousand-ish random ratings; the sampling repeats some (user, item) pairs, which
    both libraries must count record by record."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS - 4, n).astype(np.int32)
    items = rng.integers(0, N_ITEMS - 5, n).astype(np.int32)
    ratings = rng.choice(np.asarray(values, dtype=np.float64), n)
    scale = (float(min(values)), float(max(values)))
    return TrainingSet(users, items, ratings, N_USERS, N_ITEMS, scale)


def _surprise_predictions(train: TrainingSet, users, items, **kwargs) -> np.ndarray:
    """Surprise's clipped estimates, on a trainset built from the records in the same order."""
    df = pd.DataFrame({"user": train.users, "item": train.items, "rating": train.ratings})
    reader = surprise.Reader(rating_scale=train.rating_scale)
    trainset = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
    algo = surprise.KNNBasic(verbose=False, **kwargs).fit(trainset)
    return np.array([algo.predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)])


def _grid() -> tuple[np.ndarray, np.ndarray]:
    uu, ii = np.meshgrid(np.arange(N_USERS), np.arange(N_ITEMS), indexing="ij")
    return uu.ravel(), ii.ravel()


CONFIGS = [(40, 1), (5, 1), (3, 2), (1, 1)]


@pytest.mark.parametrize("similarity", ["msd", "cosine"])
@pytest.mark.parametrize("learner", [UserKNN, ItemKNN])
@pytest.mark.parametrize("k,min_k", CONFIGS)
def test_matches_surprise_knnbasic(learner, similarity, k, min_k):
    # With whole-star ratings every similarity is bit-identical to Surprise's, so ties are
    # broken identically and only summation order differs (~1e-15).
    train = _random_set()
    users, items = _grid()  # every pair, including unknown users and items
    ours = learner(k=k, min_k=min_k, similarity=similarity).fit(train).predict(users, items)
    ref = _surprise_predictions(
        train,
        users,
        items,
        k=k,
        min_k=min_k,
        sim_options={"name": similarity, "user_based": learner is UserKNN},
    )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("similarity", ["msd", "cosine"])
@pytest.mark.parametrize("learner", [UserKNN, ItemKNN])
def test_matches_surprise_when_records_are_reordered(learner, similarity):
    # Ties among equal similarities go to the earliest record, so the record order changes the
    # answer (often, with k=3 and msd's few distinct values); both must change the same way.
    train = _random_set(seed=3)
    perm = np.random.default_rng(11).permutation(len(train))
    shuffled = train.subset(perm)
    users, items = _grid()
    opts = {"name": similarity, "user_based": learner is UserKNN}
    a = learner(k=3, similarity=similarity).fit(train).predict(users, items)
    b = learner(k=3, similarity=similarity).fit(shuffled).predict(users, items)
    ref_b = _surprise_predictions(shuffled, users, items, k=3, sim_options=opts)
    np.testing.assert_allclose(b, ref_b, rtol=0, atol=1e-9)
    assert np.abs(a - b).max() > 1e-3  # the order really matters here


@pytest.mark.parametrize("learner", [UserKNN, ItemKNN])
def test_matches_surprise_with_negative_similarities(learner):
    # Ratings of both signs give negative cosines, which Surprise ranks but never counts.
    train = _random_set(seed=5, values=(-2, -1, 1, 2))
    users, items = _grid()
    for k in (40, 4):
        ours = learner(k=k, similarity="cosine").fit(train).predict(users, items)
        opts = {"name": "cosine", "user_based": learner is UserKNN}
        ref = _surprise_predictions(train, users, items, k=k, sim_options=opts)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def _tiny() -> TrainingSet:
    # u0: i0=5, i1=3, i2=4;  u1: i0=4, i1=1;  u2: i2=2
    return TrainingSet(
        np.array([0, 0, 0, 1, 1, 2], dtype=np.int32),
        np.array([0, 1, 2, 0, 1, 2], dtype=np.int32),
        np.array([5.0, 3.0, 4.0, 4.0, 1.0, 2.0]),
        3,
        3,
    )


def test_hand_worked_similarities():
    t = _tiny()
    # Users, msd: u0-u1 share i0, i1 with differences 1, 2 -> msd (1 + 4) / 2 = 2.5 -> 1/3.5;
    # u0-u2 share i2 with difference 2 -> msd 4 -> 1/5; u1-u2 share nothing -> 0.
    msd_u = similarity_matrix(t.users, t.items, t.ratings, 3, 3, "msd")
    np.testing.assert_allclose(msd_u, [[1, 2 / 7, 0.2], [2 / 7, 1, 0], [0.2, 0, 1]], atol=1e-15)
    # Users, cosine: u0-u1 (5*4 + 3*1) / sqrt((25 + 9)(16 + 1)) = 23 / sqrt(578);
    # u0-u2 4*2 / (4 * 2) = 1; u1-u2 0.
    cos_u = similarity_matrix(t.users, t.items, t.ratings, 3, 3, "cosine")
    c = 23 / np.sqrt(578)  # 0.95667...
    np.testing.assert_allclose(cos_u, [[1, c, 1], [c, 1, 0], [1, 0, 1]], atol=1e-15)
    # Items, msd: i0-i1 share u0 (5, 3), u1 (4, 1) -> msd (4 + 9) / 2 = 6.5 -> 1/7.5;
    # i0-i2 share u0 (5, 4) -> 1/2; i1-i2 share u0 (3, 4) -> 1/2.
    msd_i = similarity_matrix(t.items, t.users, t.ratings, 3, 3, "msd")
    np.testing.assert_allclose(
        msd_i, [[1, 2 / 15, 0.5], [2 / 15, 1, 0.5], [0.5, 0.5, 1]], atol=1e-15
    )
    # Items, cosine: i0-i1 (15 + 4) / sqrt((25 + 16)(9 + 1)) = 19 / sqrt(410); i0-i2 = i1-i2 = 1.
    cos_i = similarity_matrix(t.items, t.users, t.ratings, 3, 3, "cosine")
    d = 19 / np.sqrt(410)  # 0.93834...
    np.testing.assert_allclose(cos_i, [[1, d, 1], [d, 1, 1], [1, 1, 1]], atol=1e-15)


def test_hand_worked_predictions():
    t = _tiny()
    user = UserKNN(similarity="msd").fit(t)
    # (u1, i2): raters of i2 are u0 (4, sim 2/7) and u2 (2, sim 0, not counted) -> 4.
    # (u2, i0): raters of i0 are u0 (5, sim 1/5) and u1 (4, sim 0) -> 5.
    np.testing.assert_allclose(user.predict(np.array([1, 2]), np.array([2, 0])), [4.0, 5.0])
    item = ItemKNN(similarity="msd").fit(t)
    # (u2, i0): u2 rated only i2 (2, sim 1/2) -> 2.
    # (u1, i2): u1 rated i0 (4, sim 1/2) and i1 (1, sim 1/2) -> (2 + 0.5) / 1 = 2.5.
    np.testing.assert_allclose(item.predict(np.array([2, 1]), np.array([0, 2])), [2.0, 2.5])


def test_ties_go_to_the_earliest_record():
    # u0 rated i0=3. u1 (i0=3, i1=5) and u2 (i0=3, i1=1) both have msd sim 1 with u0.
    # With k=1 the neighbour for (u0, i1) is whichever rated i1 first, as in Surprise.
    users = np.array([0, 1, 2, 1, 2], dtype=np.int32)
    items = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    ratings = np.array([3.0, 3.0, 3.0, 5.0, 1.0])
    first_u1 = TrainingSet(users, items, ratings, 3, 2)
    first_u2 = first_u1.subset(np.array([0, 1, 2, 4, 3]))
    for train, expected in ((first_u1, 5.0), (first_u2, 1.0)):
        model = UserKNN(k=1).fit(train)
        assert model.predict(np.array([0]), np.array([1]))[0] == expected
        assert model.score_users(np.array([0]))[0, 1] == expected
        ref = _surprise_predictions(train, [0], [1], k=1, sim_options={"user_based": True})
        assert ref[0] == expected


@pytest.mark.parametrize("similarity", ["msd", "cosine"])
@pytest.mark.parametrize("learner", [UserKNN, ItemKNN])
@pytest.mark.parametrize("k,min_k", CONFIGS)
def test_knn_score_users_equals_predict(learner, similarity, k, min_k):
    train = _random_set(seed=1)
    model = learner(k=k, min_k=min_k, similarity=similarity).fit(train)
    users, items = _grid()
    grid = model.predict(users, items).reshape(N_USERS, N_ITEMS)
    np.testing.assert_allclose(model.score_users(np.arange(N_USERS)), grid, rtol=0, atol=1e-12)
    some = np.array([5, N_USERS - 1, 0, 5])  # repeats and an unknown user
    np.testing.assert_allclose(model.score_users(some), grid[some], rtol=0, atol=1e-12)


@pytest.mark.parametrize("similarity", ["msd", "cosine"])
@pytest.mark.parametrize("learner", [UserKNN, ItemKNN])
def test_score_users_matches_surprise_on_dense_data(learner, similarity):
    # About 35 candidates per user and per item: k=2 takes the heap path of the compiled
    # selection (more than 16 k candidates), k=10 the quickselect path.
    rng = np.random.default_rng(4)
    n = 1200
    train = TrainingSet(
        rng.integers(0, 30, n).astype(np.int32),
        rng.integers(0, 40, n).astype(np.int32),
        rng.integers(1, 6, n).astype(np.float64),
        32,
        42,
    )
    uu, ii = np.meshgrid(np.arange(32), np.arange(42), indexing="ij")
    opts = {"name": similarity, "user_based": learner is UserKNN}
    for k in (2, 10):
        scores = learner(k=k, similarity=similarity).fit(train).score_users(np.arange(32))
        ref = _surprise_predictions(train, uu.ravel(), ii.ravel(), k=k, sim_options=opts)
        np.testing.assert_allclose(scores.ravel(), ref, rtol=0, atol=1e-9)


def test_knn_learner_attributes():
    assert UserKNN.name == "user_knn" and ItemKNN.name == "item_knn"
    assert UserKNN.predicts_ratings and ItemKNN.predicts_ratings
    assert ItemKNN(k=20, similarity="cosine").params() == {
        "k": 20,
        "min_k": 1,
        "similarity": "cosine",
    }
    with pytest.raises(Exception, match="similarity"):
        UserKNN(similarity="pearson")


def test_ease_hand_worked():
    # X (users x items), with u3 and i3 without records:
    #   u0 [1 1 0 0], u1 [0 1 1 0], u2 [1 1 1 0], u3 [0 0 0 0]
    # With λ = 1 on the 3 rated items: G = XᵀX + I = [[3 2 1] [2 4 2] [1 2 3]], det 16,
    # P = G⁻¹ = adj(G) / 16 = [[.5 -.25 0] [-.25 .5 -.25] [0 -.25 .5]]  (check: G P = I).
    # B = -P / diag(P) = -2 P with zero diagonal = [[0 .5 0] [.5 0 .5] [0 .5 0]].
    # i3: G = λ alone, so its column and row of B are 0.
    train = TrainingSet(
        np.array([0, 0, 1, 1, 2, 2, 2, 2], dtype=np.int32),
        np.array([0, 1, 1, 2, 0, 1, 2, 2], dtype=np.int32),  # (u2, i2) twice: still a 1
        np.array([5.0, 1.0, 3.0, 4.0, 2.0, 2.0, 1.0, 5.0]),  # values are ignored
        4,
        4,
    )
    model = EASE(regularization=1.0).fit(train)
    b = np.zeros((4, 4))
    b[:3, :3] = [[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]]
    np.testing.assert_allclose(model.b, b, atol=1e-12)
    # Scores X B: u0 = rows 0+1 = [.5 .5 .5 0]; u1 = rows 1+2 = [.5 .5 .5 0];
    # u2 = rows 0+1+2 = [.5 1 .5 0]; u3 = 0.
    expected = np.array([[0.5, 0.5, 0.5, 0], [0.5, 0.5, 0.5, 0], [0.5, 1.0, 0.5, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(model.score_users(np.arange(4)), expected, atol=1e-12)
    uu, ii = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    np.testing.assert_allclose(model.predict(uu.ravel(), ii.ravel()), expected.ravel(), atol=1e-12)


def test_ease_matches_dense_solve():
    train = _random_set(seed=2)
    lam = 30.0
    model = EASE(regularization=lam).fit(train)
    x = np.zeros((N_USERS, N_ITEMS))
    x[train.users, train.items] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(N_ITEMS))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.b, b, rtol=0, atol=1e-12)
    assert np.all(np.diag(model.b) == 0)
    scores = model.score_users(np.arange(N_USERS))
    np.testing.assert_allclose(scores, x @ b, rtol=0, atol=1e-12)
    assert np.all(scores[N_USERS - 4 :] == 0)  # users without records
    users, items = _grid()
    np.testing.assert_allclose(model.predict(users, items), scores.ravel(), rtol=0, atol=1e-12)
    assert EASE.name == "ease" and not EASE.predicts_ratings


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 130])
def test_regularized_inverse_is_the_symmetric_inverse(n):
    """Sizes around the mirroring's 64-wide tiles: the inverse of ``G + λI``, exactly
    symmetric."""
    rng = np.random.default_rng(n)
    x = rng.random((n + 5, n))
    gram = x.T @ x
    expected = np.linalg.inv(gram + 3.0 * np.eye(n))
    got = regularized_inverse(gram.copy(), 3.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got, got.T)
    assert got.flags.c_contiguous  # the per-scenario row gathers need C order
