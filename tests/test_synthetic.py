"""Synthetic MovieLens-like interactions: sizes, reproducibility, no duplicates, skew, scale."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.data.synthetic import synthetic_interactions
from datalever.errors import DataleverError


@pytest.fixture(scope="module")
def ml100k_like():
    return synthetic_interactions(100_000, 943, 1682, seed=0)


def _keys(data) -> np.ndarray:
    r = data.records
    return r["contributor"].to_numpy(np.int64) * data.n_items + r["item"].to_numpy(np.int64)


def test_counts(ml100k_like):
    data = ml100k_like
    assert len(data) == 100_000
    assert data.n_contributors == 943
    assert data.n_items == 1682
    users = data.records["contributor"].to_numpy()
    items = data.records["item"].to_numpy()
    assert users.min() >= 0 and users.max() < 943
    assert items.min() >= 0 and items.max() < 1682
    per_user = np.bincount(users, minlength=943)
    assert per_user.min() >= 20  # every user present, with MovieLens's floor
    ts = data.training_set()
    assert (ts.n_users, ts.n_items, len(ts)) == (943, 1682, 100_000)


def test_reproducible_by_seed(ml100k_like):
    again = synthetic_interactions(100_000, 943, 1682, seed=0)
    assert again.records.equals(ml100k_like.records)
    assert again.checksum() == ml100k_like.checksum()
    other = synthetic_interactions(100_000, 943, 1682, seed=1)
    assert other.checksum() != ml100k_like.checksum()


def test_no_duplicate_pairs(ml100k_like):
    keys = _keys(ml100k_like)
    assert len(np.unique(keys)) == len(keys)


def test_skew(ml100k_like):
    data = ml100k_like
    items = np.sort(np.bincount(data.records["item"], minlength=data.n_items))[::-1]
    users = np.sort(np.bincount(data.records["contributor"], minlength=data.n_contributors))[::-1]
    top_items = items[: data.n_items // 10].sum() / items.sum()
    top_users = users[: data.n_contributors // 10].sum() / users.sum()
    assert top_items > 0.40  # MovieLens-100K: 0.43
    assert top_users > 0.25  # MovieLens-100K: 0.32
    assert np.median(users) < users.mean()  # a long tail of heavy users


def test_ratings(ml100k_like):
    r = ml100k_like.records["rating"].to_numpy()
    assert set(np.unique(r)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(r)) == 5
    assert 3.0 < r.mean() < 4.0  # MovieLens: about 3.5
    assert ml100k_like.rating_scale == (1.0, 5.0)


def test_ratings_have_user_and_item_structure(ml100k_like):
    """Per-user and per-item offsets: mean ratings spread more than noise alone would."""
    r = ml100k_like.records
    by_item = r.groupby("item")["rating"].agg(["mean", "count"])
    by_item = by_item[by_item["count"] >= 50]
    noise_only = r["rating"].std() / np.sqrt(by_item["count"]).mean()
    assert by_item["mean"].std() > 2 * noise_only


def test_saturated_users_and_dense_corner():
    """Heavy users that need most of the items, and a fully dense matrix, still work."""
    data = synthetic_interactions(2_000, 20, 120, seed=3, user_sigma=3.0)
    per_user = np.bincount(data.records["contributor"], minlength=20)
    assert per_user.max() <= 120 and per_user.sum() == 2_000
    assert len(np.unique(_keys(data))) == 2_000
    full = synthetic_interactions(50 * 40, 50, 40, seed=0)
    assert len(np.unique(_keys(full))) == 2_000


def test_feeds_the_engine(ml100k_like):
    from datalever.collectives import Collective, draw
    from datalever.learners import make_learner

    d = draw(Collective("random", size=0.1), ml100k_like, 0, 0)
    assert len(d.participants) == 94
    model = make_learner("item_mean").fit(ml100k_like.training_set())
    assert model.score_users(np.arange(3)).shape == (3, 1682)


def test_bad_sizes():
    with pytest.raises(DataleverError):
        synthetic_interactions(10, 20, 5)  # fewer records than users
    with pytest.raises(DataleverError):
        synthetic_interactions(101, 10, 10)  # more than every pair
    with pytest.raises(DataleverError):
        synthetic_interactions(10, 0, 5)
