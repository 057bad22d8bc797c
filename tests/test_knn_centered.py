"""Item-KNN on item-mean-centred ratings (LensKit's explicit item-KNN): a worked example by
hand, and every score against a plain-Python reference on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners import CenteredItemKNN, make_learner
from tests.conftest import records_from


def records(rows: list[tuple[int, int, float]], n_users: int, n_items: int) -> TrainingSet:
    """Records from (user, item, rating) rows."""
    columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return records_from(*columns, n_users, n_items)


# u0: i0 = 5, i1 = 3; u1: i0 = 3, i1 = 1, i2 = 4; u2: i1 = 5, i2 = 2; u3 has no ratings.
EXAMPLE = records(
    [(0, 0, 5.0), (0, 1, 3.0), (1, 0, 3.0), (1, 1, 1.0), (1, 2, 4.0), (2, 1, 5.0), (2, 2, 2.0)],
    4,
    3,
)


def test_worked_example():
    """Means 4, 3, 3. Centred: u0 (+1, 0, -), u1 (-1, -2, +1), u2 (-, +2, -1). Norms √2, 2√2,
    √2. Similarities: s01 = (−1/√2)(−1/√2) = 1/2, s02 = −1/2, s12 = −1/2 − 1/2 = −1."""
    model = CenteredItemKNN(k=20).fit(EXAMPLE)
    np.testing.assert_allclose(model.means, [4.0, 3.0, 3.0])
    scores = model.score_users(np.array([0, 1, 2, 3]))
    # u2 on i0: i1 (s = 1/2, deviation +2) counts, i2 (s = −1/2) does not: 4 + 2 = 6
    assert scores[2, 0] == pytest.approx(6.0)
    # u1 on i0 (its own rating left out): i1 (s = 1/2, deviation −2): 4 − 2 = 2
    assert scores[1, 0] == pytest.approx(2.0)
    # u0 on i1: i0 (s = 1/2, deviation +1): 3 + 1 = 4
    assert scores[0, 1] == pytest.approx(4.0)
    # u0 on i2: its neighbours i0 and i1 have negative similarity: no score
    assert np.isnan(scores[0, 2])
    # u3 has no history: no scores at all
    assert np.isnan(scores[3]).all()
    # predict gives the same numbers pair by pair, NaN for unknown codes
    got = model.predict(np.array([2, 1, 0, 0, 3, 9]), np.array([0, 0, 1, 2, 0, 0]))
    np.testing.assert_allclose(got, [6.0, 2.0, 4.0, np.nan, np.nan, np.nan])
    # with min_sim above 1/2, i0 and i1 are no longer neighbours: nobody has a score
    strict = CenteredItemKNN(min_sim=0.6).fit(EXAMPLE).score_users(np.arange(4))
    assert np.isnan(strict).all()


def test_a_later_rating_of_the_same_pair_replaces_the_earlier():
    # u2 rated i1 once before (1 star); its later 5 stars count, as if the first were not there
    doubled = records_from(
        np.r_[2, EXAMPLE.users], np.r_[1, EXAMPLE.items], np.r_[1.0, EXAMPLE.ratings], 4, 3
    )
    a = CenteredItemKNN().fit(EXAMPLE).score_users(np.arange(4))
    b = CenteredItemKNN().fit(doubled).score_users(np.arange(4))
    np.testing.assert_array_equal(a, b)


def reference_scores(train: TrainingSet, k: int, min_k: int, min_sim: float):
    """LensKit's explicit item-KNN in plain Python. Returns {(u, i): score or None}; pairs
    whose k-th and (k+1)-th similarities lie within 1e-9 are left out (their neighbour set
    depends on rounding)."""
    rating: dict[tuple[int, int], float] = {}
    for u, i, r in zip(
        train.users.tolist(), train.items.tolist(), train.ratings.tolist(), strict=True
    ):
        rating[(u, i)] = r  # the last rating of a pair counts
    by_item: dict[int, dict[int, float]] = {}
    for (u, i), r in rating.items():
        by_item.setdefault(i, {})[u] = r
    mean = {i: sum(rs.values()) / len(rs) for i, rs in by_item.items()}
    dev = {(u, i): r - mean[i] for (u, i), r in rating.items()}
    norm = {i: math.sqrt(sum(dev[(u, i)] ** 2 for u in rs)) for i, rs in by_item.items()}

    def sim(a: int, b: int) -> float:
        if a not in by_item or b not in by_item:
            return 0.0
        if norm[a] == 0 or norm[b] == 0:  # every rating at the item's mean
            return 0.0
        dot = sum(dev[(u, a)] * dev[(u, b)] for u in by_item[a] if u in by_item[b])
        return dot / (norm[a] * norm[b])

    out = {}
    for u in range(train.n_users):
        history = sorted(i for (v, i) in rating if v == u)
        for i in range(train.n_items):
            cands = [(sim(i, j), pos, j) for pos, j in enumerate(history) if j != i]
            cands = [c for c in cands if c[0] >= min_sim]
            cands.sort(key=lambda c: (-c[0], c[1]))
            if len(cands) > k and abs(cands[k - 1][0] - cands[k][0]) < 1e-9:
                continue  # ambiguous
            chosen = cands[:k]
            if len(chosen) < min_k or not chosen:
                out[(u, i)] = None
                continue
            den = sum(s for s, _, _ in chosen)
            num = sum(s * dev[(u, j)] for s, _, j in chosen)
            out[(u, i)] = mean[i] + num / den
    return out


@st.composite
def rated(draw) -> TrainingSet:
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 6))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_users - 1),
                st.integers(0, n_items - 1),
                st.sampled_from([1.0, 2.0, 3.0, 3.5, 4.0, 5.0]),
            ),
            max_size=30,
        )
    )
    return records(rows, n_users, n_items)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rated(), st.integers(1, 3), st.integers(1, 2), st.sampled_from([1e-6, 0.3]))
def test_scores_equal_the_reference(train, k, min_k, min_sim):
    model = CenteredItemKNN(k=k, min_k=min_k, min_sim=min_sim).fit(train)
    scores = model.score_users(np.arange(train.n_users))
    for (u, i), want in reference_scores(train, k, min_k, min_sim).items():
        if want is None:
            assert np.isnan(scores[u, i]), (u, i)
        else:
            assert scores[u, i] == pytest.approx(want, abs=1e-9), (u, i)
    uu = np.repeat(np.arange(train.n_users), train.n_items)
    ii = np.tile(np.arange(train.n_items), train.n_users)
    np.testing.assert_array_equal(model.predict(uu, ii), scores.ravel())


def test_bad_parameters_are_refused():
    with pytest.raises(DataleverError, match="k must be an integer from 1"):
        make_learner("item_knn_centered", {"k": 0})
    with pytest.raises(DataleverError, match="min_sim must be a finite number above 0"):
        make_learner("item_knn_centered", {"min_sim": 0.0})


def test_on_movielens_it_recommends_most_items_and_ranks_only(ml100k):
    learner = CenteredItemKNN()
    assert not learner.predicts_ratings
    train = ml100k.training_set(np.arange(0, len(ml100k), 2))
    scores = learner.fit(train).score_users(np.arange(50))
    assert 0.5 < np.isfinite(scores).mean() < 1.0  # items without neighbours have no score
