"""Poisoning by new contributors: added records may come from fake profiles (user codes from the
base's ``n_users`` on) and be on new items (codes from its ``n_items`` on). Every recommender's
fast path must still equal its plain fit on the modified data, and every model must answer for
every original user and every item, new ones included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.data.contributions import TrainingSet
from datalever.learners import (
    EASE,
    LEARNERS,
    BiasedMF,
    CenteredItemKNN,
    GlobalMean,
    ItemKNN,
    ItemMean,
    Popularity,
    UserKNN,
)
from datalever.learners.base import Delta, Learner, Model, fit_scenarios, shape_after
from datalever.learners.mf import initial_factors
from datalever.learners.mf_torch import torch_available
from datalever.metrics.evaluation import HeldOut, TopNTask
from datalever.protocols import DataStrikesProtocol
from datalever.protocols.split import HoldoutProtocol
from tests.conftest import records_from

#: Every recommender, with parameters small enough for MovieLens-100K in a test.
SMALL_LEARNERS = [
    GlobalMean(),
    ItemMean(),
    Popularity(),
    BiasedMF(n_factors=4, n_epochs=2, lr=0.01, seed=7, backend="numba"),
    UserKNN(k=10, similarity="msd"),
    ItemKNN(k=10, similarity="cosine"),
    CenteredItemKNN(k=10),
    EASE(regularization=50.0),
]


def test_every_recommender_is_covered():
    assert {learner.name for learner in SMALL_LEARNERS} == set(LEARNERS)


@pytest.fixture(scope="module")
def base(ml100k) -> TrainingSet:
    fold = DataStrikesProtocol(n_folds=5).folds(ml100k, 0)[0]
    return ml100k.training_set(fold.train)


# ----------------------------------------------------------------------- random poisonings


@st.composite
def poisonings(draw, base: TrainingSet) -> Delta:
    """Records removed (random ones, or a strike by random users, or none) and records added
    by 1 to 30 fake users on existing items, and sometimes on 1 to 3 new items rated by
    existing and fake users alike; ratings are whole stars on the 1-5 scale. Sometimes one more
    user or item code is declared than is used. The arrays come from a drawn seed: drawing
    80,000 choices one by one would make each example slow."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, n_users, n_items = len(base), base.n_users, base.n_items
    removal = draw(st.sampled_from(["none", "records", "strike"]))
    if removal == "records":
        removed = np.sort(rng.choice(n, draw(st.integers(1, 3000)), replace=False))
    elif removal == "strike":
        strikers = rng.choice(n_users, draw(st.integers(1, 50)), replace=False)
        removed = np.flatnonzero(np.isin(base.users, strikers))
    else:
        removed = np.zeros(0, dtype=np.int64)
    n_fake = draw(st.integers(1, 30))
    fakes = n_users + np.arange(n_fake)
    users, items = [], []
    for fake in fakes:  # each fake profile rates a few existing items
        rated = rng.choice(n_items, rng.integers(1, 40), replace=False)
        users.append(np.full(len(rated), fake))
        items.append(rated)
    n_new = draw(st.integers(1, 3)) if draw(st.booleans()) else 0
    for item in n_items + np.arange(n_new):  # a new item, pushed by real and fake fans
        fans = np.concatenate(
            [
                rng.choice(n_users, rng.integers(1, 20), replace=False),
                rng.choice(fakes, rng.integers(0, n_fake + 1), replace=False),
            ]
        )
        users.append(fans)
        items.append(np.full(len(fans), item))
    users, items = np.concatenate(users), np.concatenate(items)
    order = rng.permutation(len(users))  # fake and real records interleaved
    ratings = rng.integers(1, 6, len(users)).astype(np.float64)
    added = records_from(
        users[order],
        items[order],
        ratings[order],
        n_users + n_fake + draw(st.integers(0, 1)),
        n_items + n_new + draw(st.integers(0, 1)),
    )
    return Delta(removed.astype(np.int64), added)


@st.composite
def batches(draw, base: TrainingSet) -> list[Delta]:
    """One or two poisonings (of different shapes, fitted in one batch), sometimes with a
    strike that brings no one new among them."""
    ds = draw(st.lists(poisonings(base), min_size=1, max_size=2))
    if draw(st.booleans()):
        strikers = np.arange(draw(st.integers(0, 40)))
        ds.insert(
            draw(st.integers(0, len(ds))), Delta(np.flatnonzero(np.isin(base.users, strikers)))
        )
    return ds


def checked_users(base: TrainingSet, ds: list[Delta], rng: np.random.Generator) -> np.ndarray:
    """Original users to compare models on where scoring all of them takes seconds: up to 24
    whose records the deltas change (strikers, real fans of a new item) and 24 others."""
    changed = [base.users[d.removed] for d in ds]
    changed += [d.added.users[d.added.users < base.n_users] for d in ds if d.added is not None]
    changed = np.unique(np.concatenate(changed))
    picks = [
        rng.choice(changed, min(24, len(changed)), replace=False),
        rng.choice(base.n_users, 24, replace=False),
    ]
    return np.unique(np.concatenate(picks))


def assert_same_model(
    fast: Model,
    plain: Model,
    users: np.ndarray,
    n_original: int,
    shape: tuple[int, int],
    exact: bool,
) -> None:
    """The same size, the same predictions for the original ``users`` on every item (new items
    included), and the same dense scores for them and every fake user."""
    n_users, n_items = shape
    assert fast.n_items == plain.n_items == n_items

    def same(got: np.ndarray, want: np.ndarray) -> None:
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    uu = np.repeat(users, n_items)
    ii = np.tile(np.arange(n_items), len(users))
    same(fast.predict(uu, ii), plain.predict(uu, ii))
    scored = np.r_[users, np.arange(n_original, n_users)]  # and the fake profiles
    same(fast.score_users(scored), plain.score_users(scored))


#: Learners whose every score is cheap: compared on every original user. The others (scoring
#: MovieLens-100K's 943 users × 1,682 items takes them seconds) on :func:`checked_users`.
EVERY_USER = {"global_mean", "item_mean", "popularity", "biased_mf"}


def check_poisonings(learner: Learner, base: TrainingSet, data) -> None:
    ds = data.draw(batches(base))
    fast = learner.fast_path(base)
    # Through the engine's entry point: the fast path when the learner has one (biased MF
    # fits the whole batch in one kernel call), plain fits otherwise.
    models = list(fit_scenarios(learner, base, ds, fast))
    exact = learner.name == "biased_mf"  # the same computation, bit for bit
    if learner.name in EVERY_USER:
        users = np.arange(base.n_users)
    else:
        users = checked_users(base, ds, np.random.default_rng(data.draw(st.integers(0, 2**32))))
    for delta, model in zip(ds, models, strict=True):
        train = delta.apply(base)
        shape = shape_after(base, delta)
        assert (train.n_users, train.n_items) == shape
        assert_same_model(model, learner.fit(train), users, base.n_users, shape, exact)


CHEAP = [lr for lr in SMALL_LEARNERS if lr.name in EVERY_USER]
COSTLY = [lr for lr in SMALL_LEARNERS if lr.name not in EVERY_USER]


@pytest.mark.parametrize("learner", CHEAP, ids=lambda learner: learner.name)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_equals_plain_fit_with_fake_users_and_new_items(learner: Learner, base, data):
    """Random poisonings of a MovieLens-100K fold: fast path and plain fit agree (biased MF
    bit for bit, the others to the tolerances of tests/test_fast_paths.py)."""
    check_poisonings(learner, base, data)


@pytest.mark.parametrize("learner", COSTLY, ids=lambda learner: learner.name)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_neighbourhood_and_ease_fast_paths_with_fake_users_and_new_items(
    learner: Learner, base, data
):
    """As above, for the learners whose fits and scores take a second or more each."""
    check_poisonings(learner, base, data)


def test_a_shilling_attack_takes_the_update_paths(base):
    """A strike plus 20 fake profiles and a new item: EASE takes its rank-k update and item-KNN
    its exact update of the statistics (not their plain fallbacks), grown to the new shape."""
    rng = np.random.default_rng(4)
    fakes = base.n_users + np.arange(20)
    users = np.r_[np.repeat(fakes, 5), fakes, [0, 1]]
    items = np.r_[rng.integers(0, base.n_items, 100), np.full(22, base.n_items)]
    added = records_from(users, items, np.full(len(users), 5.0), fakes[-1] + 1, base.n_items + 1)
    delta = Delta(np.flatnonzero(base.users < 10), added)
    train = delta.apply(base)
    checked = np.r_[0:12, 400:410]
    for learner in (EASE(regularization=50.0), ItemKNN(k=10, similarity="cosine")):
        path = learner.fast_path(base)
        (model,) = path.fit_many([delta])
        if learner.name == "ease":
            assert type(model).__name__ == "_UpdatedEASEModel"
        else:
            t = path.rows.touched(delta)
            assert t.update_work <= t.scratch_work  # the update, not the plain computation
        assert_same_model(
            model, learner.fit(train), checked, base.n_users, (train.n_users, train.n_items), False
        )


# ------------------------------------------------------------------------- worked examples


def test_item_mean_with_one_fake_user_worked_by_hand():
    # Two users, three items: item 0 rated 4 and 2, item 1 rated 5, item 2 unrated.
    base = records_from([0, 1, 0], [0, 0, 1], [4.0, 2.0, 5.0], 2, 3)
    # A fake profile (user 2, a new code) rates item 0 one star.
    fake = records_from([2], [0], [1.0], 3, 3)
    delta = Delta(np.zeros(0, dtype=np.int64), fake)
    learner = ItemMean()
    (model,) = learner.fast_path(base).fit_many([delta])
    # item 0: (4 + 2 + 1) / 3 = 7/3; item 1: 5; item 2 (unrated): the global mean 12/4 = 3.
    expected = [7 / 3, 5.0, 3.0]
    np.testing.assert_allclose(model.score_users(np.array([0, 1])), [expected, expected])
    np.testing.assert_allclose(model.predict(np.array([0, 1, 2]), np.array([0, 1, 2])), expected)
    plain = learner.fit(delta.apply(base))
    assert delta.apply(base).n_users == 3
    np.testing.assert_allclose(plain.score_users(np.arange(3)), [expected] * 3)
    # The fake profile rates a new item (code 3) five stars, and user 1's rating of item 0 is
    # struck: item 0 keeps 4 alone; item 3 is 5; item 2 takes the global mean (4+5+5)/3.
    new_item = Delta(np.array([1]), records_from([2], [3], [5.0], 3, 4))
    (model,) = learner.fast_path(base).fit_many([new_item])
    assert model.n_items == 4
    np.testing.assert_allclose(model.score_users(np.array([0])), [[4.0, 5.0, 14 / 3, 5.0]])


def test_a_fake_profile_without_records_still_counts_as_a_user():
    # Declared codes with no record: the model knows them (and nothing of them).
    base = records_from([0, 1], [0, 1], [4.0, 2.0], 2, 2)
    empty = records_from([], [], [], 4, 3)
    delta = Delta(np.zeros(0, dtype=np.int64), empty)
    assert shape_after(base, delta) == (4, 3)
    for learner in SMALL_LEARNERS:
        fast = learner.fast_path(base)
        (model,) = fit_scenarios(learner, base, [delta], fast)
        plain = learner.fit(delta.apply(base))
        assert model.n_items == plain.n_items == 3
        np.testing.assert_allclose(model.score_users(np.arange(4)), plain.score_users(np.arange(4)))


@pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")
def test_torch_backend_starts_each_shape_from_its_own_item_rows():
    """Scenarios with different numbers of fake users in one torch batch equal their plain
    torch fits (the CUDA device, when there is one, is checked by tests/test_mf_torch.py)."""
    rng = np.random.default_rng(0)
    base = records_from(
        rng.integers(0, 6, 40), rng.integers(0, 5, 40), rng.integers(1, 6, 40), 6, 5
    )
    ds = [
        Delta(np.array([0, 3]), records_from([6, 7, 6], [1, 5, 2], [5.0, 5.0, 1.0], 8, 6)),
        Delta(np.zeros(0, np.int64), records_from([6], [0], [5.0], 7, 5)),
        Delta(np.array([1])),
    ]
    learner = BiasedMF(n_factors=3, n_epochs=3, lr=0.05, seed=2, backend="torch", device="cpu")
    for delta, model in zip(ds, learner.fast_path(base).fit_many(ds), strict=True):
        plain = learner.fit(delta.apply(base))
        assert model.n_items == plain.n_items
        everyone = np.arange(len(plain.bu))
        # To 1e-7, as tests/test_mf_torch.py bounds batched torch fits against separate ones.
        np.testing.assert_allclose(
            model.score_users(everyone), plain.score_users(everyone), atol=1e-7
        )


def test_biased_mf_initial_factors_follow_the_documented_draws():
    """The dataset's user rows are the first draws of ``default_rng(seed)``, its item rows the
    next; users and items beyond the dataset's draw from streams of their own, so adding fake
    profiles or a new item moves no other row."""
    from datalever.learners.mf import NEW_ITEMS_STREAM, NEW_USERS_STREAM

    coded = (5, 4)
    shapes = [(5, 4), (7, 4), (5, 6), (8, 7)]
    pu0, qi0, variant = initial_factors(11, 0.1, 3, coded, shapes)
    rng = np.random.default_rng(11)
    users = rng.normal(0, 0.1, (5, 3)).astype(np.float32)
    items = rng.normal(0, 0.1, (4, 3)).astype(np.float32)
    more_users = np.random.default_rng([11, NEW_USERS_STREAM]).normal(0, 0.1, (3, 3))
    more_items = np.random.default_rng([11, NEW_ITEMS_STREAM]).normal(0, 0.1, (3, 3))
    np.testing.assert_array_equal(pu0, np.vstack([users, more_users.astype(np.float32)]))
    np.testing.assert_array_equal(qi0[0], np.vstack([items, more_items.astype(np.float32)]))
    assert (variant == 0).all() and len(qi0) == 1


def test_a_fake_user_without_records_changes_no_biased_mf_prediction(ml100k):
    """Declaring one more user (no records) leaves every original user's and item's
    predictions exactly as they were: starting factors do not depend on the count."""
    from datalever.data.contributions import TrainingSet
    from datalever.learners import BiasedMF

    base = ml100k.training_set(np.arange(20_000))
    nobody = TrainingSet(
        np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), base.n_users + 1, base.n_items
    )
    learner = BiasedMF(n_factors=8, n_epochs=3)
    before, after = learner.fit(base), learner.fit(base.concat(nobody))
    users = np.arange(base.n_users)
    np.testing.assert_array_equal(after.score_users(users), before.score_users(users))


# ------------------------------------------------------------------------------ evaluation


def test_top_n_lists_rank_a_new_item_the_fold_does_not_know(ml100k):
    """The judge ranks every item a model knows: 600 fake fans make a new item the most
    popular, and it heads every held-out user's list (and is never relevant)."""
    fold = HoldoutProtocol().folds(ml100k, 0)[0]
    base = ml100k.training_set(fold.train)
    test = ml100k.training_set(fold.test)
    fans = base.n_users + np.arange(600)
    new_item = base.n_items
    added = records_from(
        fans, np.full(600, new_item), np.full(600, 5.0), fans[-1] + 1, new_item + 1
    )
    (model,) = Popularity().fast_path(base).fit_many([Delta(np.zeros(0, np.int64), added)])
    assert model.n_items == ml100k.n_items + 1
    held_out = HeldOut(test.users, test.items, test.ratings, ml100k.n_contributors)
    task = TopNTask(held_out, base.users, base.items, k=10)
    users, items, relevant = task.top_lists(model)
    first = np.r_[True, users[1:] != users[:-1]]
    assert len(np.unique(users)) == len(np.unique(test.users))
    assert np.all(items[first] == new_item)
    assert not relevant[items == new_item].any()


def test_a_new_item_reshuffles_no_tie_among_the_datasets_items():
    """Top-N ties are broken in one seeded order of the dataset's items; a model that knows a
    new item ranks ties among the others exactly as before, the new item after them."""
    from datalever.metrics import HeldOut, TopNTask

    held = HeldOut(np.array([0]), np.array([1]), np.array([5.0]), 1)
    task = TopNTask(held, np.array([0]), np.array([2]), 3, tie_seed=7, dataset_items=5)
    five, seven = task.tie_order(5), task.tie_order(7)
    np.testing.assert_array_equal(seven[:5], five)
    np.testing.assert_array_equal(seven[5:], [5, 6])
    np.testing.assert_array_equal(five, np.random.default_rng(7).permutation(5))
