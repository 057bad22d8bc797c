"""Sufficient-statistics fast paths: every model a fast path makes equals the plain fit on the
scenario's modified training set (same predictions on every pair, same ``score_users``), for
random small datasets and deltas, on the real MovieLens-100K, and through the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.data.contributions import TrainingSet
from datalever.engine import run_spec
from datalever.learners import EASE, GlobalMean, ItemKNN, ItemMean, Popularity, UserKNN
from datalever.learners.base import Delta, Learner, Model, fit_scenarios
from datalever.protocols import DataStrikesProtocol
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.conftest import records_from

LEARNERS = [
    GlobalMean(),
    ItemMean(),
    Popularity(),
    UserKNN(k=40, similarity="msd"),
    UserKNN(k=2, min_k=2, similarity="cosine"),
    UserKNN(k=1, similarity="msd"),
    ItemKNN(k=40, similarity="cosine"),
    ItemKNN(k=2, similarity="msd"),
    ItemKNN(k=1, min_k=2, similarity="cosine"),
    EASE(regularization=0.5),
    EASE(regularization=50.0),
]
PATH_NAMES = {"user_knn": "user-knn-rows"}


def _grid(n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)


def assert_same_model(fast: Model, plain: Model, n_users: int, n_items: int, users=None) -> None:
    """Same predictions on every (user, item) pair and the same dense scores per user."""
    uu, ii = _grid(n_users, n_items)
    np.testing.assert_allclose(fast.predict(uu, ii), plain.predict(uu, ii), rtol=1e-9, atol=1e-12)
    users = np.arange(n_users) if users is None else users
    np.testing.assert_allclose(
        fast.score_users(users), plain.score_users(users), rtol=1e-9, atol=1e-12
    )


def assert_same_for_users(fast: Model, plain: Model, users: np.ndarray, n_items: int) -> None:
    """Same predictions on every pair of ``users`` and the same dense scores for them."""
    uu, ii = np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))
    np.testing.assert_allclose(fast.predict(uu, ii), plain.predict(uu, ii), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fast.score_users(users), plain.score_users(users), rtol=1e-9, atol=1e-12
    )


# ------------------------------------------------------------------ random data and deltas

RATINGS = st.integers(2, 10).map(lambda h: h / 2)  # 1 to 5 stars in half steps
#: Ratings whose sums round: few values, so that similarities still tie.
ROUNDED_RATINGS = st.sampled_from([1.3, 2.7, 3.7, 4.1, 5.0])


@st.composite
def records(draw, n_users: int, n_items: int, max_size: int, ratings=RATINGS) -> TrainingSet:
    """Records over small ranges, so (user, item) pairs repeat and some codes go unused."""
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1), ratings),
            max_size=max_size,
        )
    )
    users, items, ratings = (np.array(col) for col in zip(*rows, strict=True)) if rows else [[]] * 3
    return records_from(users, items, ratings, n_users, n_items)


@st.composite
def deltas(draw, base: TrainingSet, ratings=RATINGS) -> Delta:
    """A strike by a random collective of users, random records withheld on top, and
    sometimes records added (by new or known users, for seen or unseen items)."""
    n = len(base)
    collective = draw(st.sets(st.integers(0, base.n_users - 1), max_size=base.n_users))
    struck = np.isin(base.users, list(collective))
    struck |= np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    removed = np.flatnonzero(struck)
    if draw(st.booleans()) and len(removed):  # positions as a lever might not give them
        removed = np.concatenate([removed[::-1], removed[:1]])
    added = None
    if draw(st.booleans()):
        added = draw(records(base.n_users, base.n_items, 12, ratings))
    return Delta(removed, added)


@st.composite
def problems(draw, ratings=RATINGS) -> tuple[TrainingSet, list[Delta]]:
    base = draw(records(draw(st.integers(1, 8)), draw(st.integers(1, 8)), 40, ratings))
    ds = draw(st.lists(deltas(base, ratings), min_size=1, max_size=4))
    # The empty delta, and everything struck, must come out right too.
    ds += [Delta(np.zeros(0, dtype=np.int64)), Delta(np.arange(len(base)))]
    return base, ds


@pytest.mark.parametrize("learner", LEARNERS, ids=repr)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_fast_path_equals_plain_fit(learner: Learner, problem):
    base, ds = problem
    frozen = [a.copy() for a in (base.users, base.items, base.ratings)]
    fast = learner.fast_path(base)
    assert fast is not None
    assert fast.name == PATH_NAMES.get(learner.name, "sufficient-statistics")
    # All models first, then the checks: a later delta must not change an earlier model.
    models = list(fast.fit_many(ds))
    again = list(fast.fit_many(ds[::-1]))[::-1]  # the same path, reused in another order
    for delta, model, model_again in zip(ds, models, again, strict=True):
        plain = learner.fit(delta.apply(base))
        assert_same_model(model, plain, base.n_users, base.n_items)
        assert_same_model(model_again, plain, base.n_users, base.n_items)
    for a, b in zip(frozen, (base.users, base.items, base.ratings), strict=True):
        np.testing.assert_array_equal(a, b)  # the base is left as it was


@pytest.mark.parametrize("learner", LEARNERS, ids=repr)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(ROUNDED_RATINGS))
def test_fast_path_equals_plain_fit_when_sums_round(learner: Learner, problem):
    # Subtracting rounded sums can differ from a plain fit's in the last bit, which could break
    # a tie between similarities the other way; item-KNN then takes the plain computation.
    base, ds = problem
    for delta, model in zip(ds, learner.fast_path(base).fit_many(ds), strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)), base.n_users, base.n_items)


def test_item_knn_with_rounded_sums_breaks_ties_as_a_plain_fit():
    # Users 0 and 2 both rate items 0 and 1. Once user 0 strikes, the cosine of items 0 and 1
    # rests on user 2 alone: a plain fit computes 4.1·2.7 / sqrt(4.1²·2.7²), while subtracting
    # user 0's terms from the base sums leaves other last bits. With k = 1 that decides whether
    # item 1 (the earlier record) ties with item 0 itself for user 2's estimate of item 0.
    base = TrainingSet(
        np.array([2, 0, 2, 0], dtype=np.int32),
        np.array([1, 1, 0, 0], dtype=np.int32),
        np.array([4.1, 2.7, 2.7, 4.1]),
        4,
        3,
    )
    learner = ItemKNN(k=1, similarity="cosine")
    delta = Delta(np.array([1, 3]))
    (model,) = learner.fast_path(base).fit_many([delta])
    assert_same_model(model, learner.fit(delta.apply(base)), 4, 3)


@pytest.mark.parametrize("learner", [UserKNN(k=2), ItemKNN(k=2), ItemKNN(k=1, similarity="cosine")])
def test_ties_follow_the_modified_record_order(learner):
    # Many equal similarities, broken by record order: removing an early record and adding
    # a record at the end moves a candidate to the back of its queue, in both paths alike.
    base = TrainingSet(
        np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4], dtype=np.int32),
        np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 2], dtype=np.int32),
        np.array([5.0, 1, 3, 4, 5, 1, 3, 4, 2, 2, 2]),
        6,
        4,
    )
    moved = TrainingSet(base.users[:2], base.items[:2], base.ratings[:2], 6, 4)
    ds = [
        Delta(np.array([0, 1]), moved),  # the first two records go to the back
        Delta(np.array([8])),
        Delta(np.zeros(0, dtype=np.int64), moved),  # duplicates of the first two records
    ]
    for delta, model in zip(ds, learner.fast_path(base).fit_many(ds), strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)), 6, 4)


# ---------------------------------------------------------------------- real MovieLens-100K


@pytest.fixture(scope="module")
def ml100k_fold0(ml100k) -> TrainingSet:
    fold = DataStrikesProtocol(n_folds=5).folds(ml100k, 0)[0]
    return ml100k.training_set(fold.train)


@pytest.mark.parametrize(
    "learner",
    [
        GlobalMean(),
        ItemMean(),
        Popularity(),
        UserKNN(k=40, similarity="msd"),
        ItemKNN(k=40, similarity="msd"),
        ItemKNN(k=40, similarity="cosine"),
        EASE(),
    ],
    ids=repr,
)
def test_movielens_strike_of_30_percent(learner, ml100k_fold0):
    base = ml100k_fold0
    rng = np.random.default_rng(30)
    struck = rng.choice(base.n_users, int(0.3 * base.n_users), replace=False)
    delta = Delta(np.flatnonzero(np.isin(base.users, struck)))
    (model,) = fit_scenarios(learner, base, [delta], learner.fast_path(base))
    plain = learner.fit(delta.apply(base))
    # Every pair of a sample of users (struck ones included), and every user's scores.
    users = np.concatenate([struck[:20], rng.choice(base.n_users, 40, replace=False)])
    assert_same_for_users(model, plain, users, base.n_items)


def test_ease_update_in_small_chunks_and_without_cached_products(ml100k_fold0, monkeypatch):
    """EASE's fast path bounds memory two ways at scale: predictions gather users' rows in
    chunks, and ``X P`` and ``X P Xᵀ`` are recomputed per use when too large to keep. Forced
    here on MovieLens-100K (tiny chunks, no cache), a partial strike and additions still equal
    a plain fit."""
    from datalever.learners import ease

    monkeypatch.setattr(ease, "_BLOCK", 5_000)
    monkeypatch.setattr(ease._EASEPath, "cache_bytes", 0)
    base = ml100k_fold0
    rng = np.random.default_rng(7)
    struck = rng.choice(base.n_users, 60, replace=False)
    removed = np.flatnonzero(np.isin(base.users, struck) & (rng.random(len(base)) < 0.7))
    added = base.subset(rng.choice(len(base), 40, replace=False))
    delta = Delta(removed, added)
    learner = EASE()
    fast = learner.fast_path(base)
    assert fast.a is None and fast.k is None
    (model,) = fit_scenarios(learner, base, [delta], fast)
    plain = learner.fit(delta.apply(base))
    users = np.concatenate([struck[:10], rng.choice(base.n_users, 30, replace=False)])
    assert_same_for_users(model, plain, users, base.n_items)


def test_ease_predictions_in_small_chunks_with_cached_products(ml100k_fold0, monkeypatch):
    """Chunked predictions through the fold's cached ``K`` (strikes: the Cholesky update)."""
    from datalever.learners import ease

    monkeypatch.setattr(ease, "_BLOCK", 3_000)
    base = ml100k_fold0
    rng = np.random.default_rng(11)
    struck = rng.choice(base.n_users, 150, replace=False)
    delta = Delta(np.flatnonzero(np.isin(base.users, struck)))
    learner = EASE()
    fast = learner.fast_path(base)
    (model,) = fit_scenarios(learner, base, [delta], fast)
    assert fast.k is not None
    plain = learner.fit(delta.apply(base))
    pairs = rng.choice(len(base), 4_000, replace=False)
    uu, ii = base.users[pairs].astype(np.int64), base.items[pairs].astype(np.int64)
    np.testing.assert_allclose(model.predict(uu, ii), plain.predict(uu, ii), rtol=1e-9, atol=1e-12)


def test_ease_items_left_without_records_score_exactly_as_a_plain_fit(ml100k_fold0):
    """When a strike removes every record of an item, a plain fit scores it exactly 0 for
    everyone; the rank-k update must too (not ±1e-17), or ties would fall differently."""
    base = ml100k_fold0
    counts = np.bincount(base.items, minlength=base.n_items)
    rare = np.flatnonzero((counts > 0) & (counts <= 2))[:5]
    struck = np.unique(base.users[np.isin(base.items, rare)])
    delta = Delta(np.flatnonzero(np.isin(base.users, struck)))
    learner = EASE()
    (model,) = fit_scenarios(learner, base, [delta], learner.fast_path(base))
    assert model.__class__.__name__ == "_UpdatedEASEModel"  # the rank-k path, not a refit
    plain = learner.fit(delta.apply(base))
    users = np.arange(base.n_users)
    fast_scores, plain_scores = model.score_users(users), plain.score_users(users)
    assert np.all(plain_scores[:, rare] == 0.0)
    assert np.array_equal(fast_scores[:, rare], plain_scores[:, rare])


# ----------------------------------------------------------------------------- the engine

ENGINE_SPEC = """
name = "fast-paths"
seed = 5

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "item_mean"

[[learners]]
name = "user_knn"

[lever]
kind = "strike"

[collectives]
sizes = [0.0, 0.3]
samples = 2

[evaluation]
metrics = ["ndcg@10", "rmse"]
"""


def test_engine_records_the_path_and_both_paths_agree(ml100k, tmp_path):
    spec = parse_spec(ENGINE_SPEC)
    frames = {}
    for path in ("auto", "plain"):
        store = ResultsStore(tmp_path / f"{path}.sqlite")
        frames[path] = store.results(run_spec(spec, store, data=ml100k, path=path).run_id)
    auto, plain = frames["auto"], frames["plain"]
    paths = auto.groupby("learner")["path"].unique()
    assert list(paths["item_mean"]) == ["sufficient-statistics"]
    assert list(paths["user_knn"]) == ["user-knn-rows"]
    assert set(plain["path"]) == {"plain"}
    on = ["learner", "lever", "collective", "sample", "fold", "eval_group", "metric"]
    merged = pd.merge(auto, plain, on=on, suffixes=("_auto", "_plain"), validate="one_to_one")
    assert len(merged) == len(auto) == len(plain) > 0
    for col in ("value", "baseline", "reference"):
        a, b = merged[f"{col}_auto"].astype(float), merged[f"{col}_plain"].astype(float)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
