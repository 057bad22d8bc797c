"""Biased MF's batched fast path: every batched model equals the plain fit on the scenario's
training set, because a fit visits records in one fixed order restricted to those present."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.data.contributions import TrainingSet
from datalever.learners.base import Delta, fit_scenarios
from datalever.learners.mf import BatchedSGD, BiasedMF, BiasedMFModel, visit_order
from tests.conftest import random_records, records_from

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_learner(seed: int = 0, n_factors: int = 3) -> BiasedMF:
    return BiasedMF(
        n_factors=n_factors, n_epochs=4, lr=0.05, reg=0.02, init_std=0.1, seed=seed, backend="numba"
    )


# Factor counts below, at and above the kernel's vector widths, so both the vectorised loop
# body and its scalar remainder run.
FACTORS = st.sampled_from([1, 3, 8, 17, 40])


@st.composite
def records(draw, n_users: int, n_items: int, max_size: int) -> TrainingSet:
    """Records with repeated (user, item) pairs allowed, ratings on the 1..5 scale."""
    n = draw(st.integers(0, max_size))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    ratings = draw(
        st.lists(st.sampled_from([1.0, 2.0, 3.0, 3.5, 4.0, 5.0]), min_size=n, max_size=n)
    )
    return records_from(users, items, ratings, n_users, n_items)


@st.composite
def deltas(draw, base: TrainingSet, additions: bool = True) -> Delta:
    """Remove a random subset of records or every record of some users; maybe add records."""
    n = len(base)
    if draw(st.booleans()):
        keep = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        removed = np.flatnonzero(~keep)
    else:
        struck = draw(st.sets(st.integers(0, base.n_users - 1)))
        removed = np.flatnonzero(np.isin(base.users, list(struck)))
    added = None
    if additions and draw(st.booleans()):
        added = draw(records(base.n_users, base.n_items, 8))
    return Delta(removed.astype(np.int64), added)


@st.composite
def problems(draw, additions: bool = True, max_deltas: int = 6):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 6))
    base = draw(records(n_users, n_items, 30))
    ds = draw(st.lists(deltas(base, additions), min_size=1, max_size=max_deltas))
    return base, ds, draw(st.integers(0, 2**32))


def all_pairs(n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)


def assert_same_model(got: BiasedMFModel, expected: BiasedMFModel) -> None:
    assert got.mu == expected.mu
    for name in ("bu", "bi", "pu", "qi"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    uu, ii = all_pairs(len(got.bu), got.n_items)
    np.testing.assert_allclose(got.predict(uu, ii), expected.predict(uu, ii), rtol=0, atol=1e-12)


@SETTINGS
@given(problems(), FACTORS)
def test_batched_equals_separate_fits(problem, n_factors):
    base, ds, seed = problem
    learner = small_learner(seed, n_factors)
    fast = learner.fast_path(base)
    assert isinstance(fast, BatchedSGD) and fast.name == "batched-sgd"
    models = list(fast.fit_many(ds))
    assert len(models) == len(ds)
    for delta, model in zip(ds, models, strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)))


@SETTINGS
@given(problems(max_deltas=3))
def test_fit_many_twice_gives_the_same(problem):
    base, ds, seed = problem
    fast = small_learner(seed).fast_path(base)
    for a, b in zip(fast.fit_many(ds), fast.fit_many(ds), strict=True):
        assert_same_model(a, b)


@SETTINGS
@given(problems(max_deltas=3), st.integers(0, 3))
def test_a_batch_with_the_empty_delta_holds_the_plain_fit_on_base(problem, where):
    base, ds, seed = problem
    learner = small_learner(seed)
    ds = list(ds)
    where = min(where, len(ds))
    ds.insert(where, Delta(np.zeros(0, dtype=np.int64)))
    models = list(learner.fast_path(base).fit_many(ds))
    assert_same_model(models[where], learner.fit(base))


@SETTINGS
@given(problems(max_deltas=1))
def test_visiting_order_of_a_scenario_is_the_merged_order_restricted(problem):
    base, (delta,), seed = problem
    no_records = np.zeros(0, dtype=np.int32)
    nothing = TrainingSet(no_records, no_records, np.zeros(0), base.n_users, base.n_items)
    added = delta.added if delta.added is not None else nothing
    # the scenario's records, and where each sits among base + added
    keep = np.ones(len(base), dtype=bool)
    keep[delta.removed] = False
    position = np.concatenate([np.flatnonzero(keep), len(base) + np.arange(len(added))])
    train = delta.apply(base) if delta.added is not None else base.subset(keep)
    merged = base.concat(added)
    merged_order = visit_order(merged.users, merged.items, seed)
    present = np.zeros(len(merged), dtype=bool)
    present[position] = True
    expected = merged_order[present[merged_order]]
    np.testing.assert_array_equal(position[visit_order(train.users, train.items, seed)], expected)


@SETTINGS
@given(records(5, 5, 30), st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_order_does_not_depend_on_how_records_are_listed(train, seed, rnd):
    # shuffling the input leaves the visiting sequence of (user, item, rating) unchanged, up to
    # the order of repeated (user, item) pairs, which keep their input order
    perm = list(range(len(train)))
    rnd.shuffle(perm)
    shuffled = train.subset(np.array(perm, dtype=np.int64))

    def sequence(ts):
        order = visit_order(ts.users, ts.items, seed)
        return [(int(ts.users[j]), int(ts.items[j])) for j in order]

    assert sequence(shuffled) == sequence(train)


def test_batched_equals_separate_fits_on_a_larger_problem():
    rng = np.random.default_rng(7)
    n = 3000
    base = random_records(rng, n, 120, 90)
    extra = random_records(rng, 50, 120, 90)
    learner = BiasedMF(n_factors=100, n_epochs=5, seed=11)
    ds = [Delta(np.flatnonzero(np.isin(base.users, rng.choice(120, m)))) for m in (12, 36, 60)]
    ds += [Delta(np.zeros(0, dtype=np.int64)), Delta(ds[0].removed, extra)]
    for delta, model in zip(ds, learner.fast_path(base).fit_many(ds), strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)))


def test_order_depends_on_the_seed():
    users = np.repeat(np.arange(20), 5)
    items = np.tile(np.arange(5), 20)
    assert not np.array_equal(visit_order(users, items, 0), visit_order(users, items, 1))


def test_delta_with_repeated_and_negative_positions_reads_like_apply():
    base = TrainingSet(
        np.array([0, 0, 1, 1, 2, 2], dtype=np.int32),
        np.array([0, 1, 0, 2, 1, 2], dtype=np.int32),
        np.array([5.0, 3.0, 4.0, 2.0, 3.0, 1.0]),
        3,
        3,
    )
    learner = small_learner(4)
    ds = [
        Delta(np.array([1, 1, -1])),
        Delta(np.array([True, False, False, True, False, False])),
        Delta(np.arange(6)),  # everything removed: mu is the middle of the scale
    ]
    models = list(learner.fast_path(base).fit_many(ds))
    for delta, model in zip(ds, models, strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)))
    assert models[2].mu == 3.0


def test_added_records_outside_the_coded_users_are_refused():
    """Added records may bring new users, counted in their own ``n_users``; a code beyond
    even that count is refused."""
    base = TrainingSet(np.array([0], np.int32), np.array([0], np.int32), np.array([4.0]), 1, 1)
    bad = TrainingSet(np.array([2], np.int32), np.array([0], np.int32), np.array([4.0]), 2, 1)
    with pytest.raises(ValueError, match="user codes"):
        list(small_learner().fast_path(base).fit_many([Delta(np.zeros(0, np.int64), bad)]))


# ------------------------------------------------------------------------ threads, processes

TRAIN = TrainingSet(
    np.array([0, 0, 1, 1, 2, 3, 3], dtype=np.int32),
    np.array([0, 1, 0, 2, 0, 1, 2], dtype=np.int32),
    np.array([5.0, 3.0, 4.0, 2.0, 3.0, 4.0, 1.0]),
    4,
    3,
)


def _fit_in_worker(seed: int) -> np.ndarray:
    learner = small_learner(seed)
    models = list(learner.fast_path(TRAIN).fit_many([Delta(np.array([seed % 7]))] * 3))
    return np.stack([m.score_users(np.arange(4)) for m in models])


def test_forked_workers_can_fit_after_the_parent_did():
    # The engine forks its worker pool; GNU OpenMP aborts a forked child that reuses it.
    expected = [_fit_in_worker(s) for s in range(4)]  # the parent runs the parallel kernel
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        got = list(pool.map(_fit_in_worker, range(4)))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_concurrent_threads_get_the_same_models():
    expected = [_fit_in_worker(s) for s in range(6)]
    barrier = threading.Barrier(3)

    def job(seed):
        if seed < 3:
            barrier.wait()
        return _fit_in_worker(seed)

    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(job, range(6)))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_engine_helper_uses_the_fast_path():
    base = TRAIN
    learner = small_learner(1)
    ds = [Delta(np.array([0])), Delta(np.zeros(0, dtype=np.int64))]
    fast = list(fit_scenarios(learner, base, ds, learner.fast_path(base)))
    plain = list(fit_scenarios(learner, base, ds, None))
    for a, b in zip(fast, plain, strict=True):
        assert_same_model(a, b)


def test_predictions_for_codes_outside_the_training_ranges_leave_their_terms_out():
    """An unknown user or item (out of range, or without records) contributes nothing, as in
    Surprise; in-range pairs are mu + biases + the factor dot product."""
    rng = np.random.default_rng(0)
    train = random_records(rng, 60, 5, 7)
    model = BiasedMF(n_factors=3, n_epochs=2).fit(train)
    users = np.array([1, 1, 99, -3, 99])
    items = np.array([2, 50, 2, 2, -1])
    got = model.predict(users, items)
    lo, hi = model.rating_scale
    expected = [
        model.mu + model.bu[1] + model.bi[2] + model.pu[1] @ model.qi[2],
        model.mu + model.bu[1],
        model.mu + model.bi[2],
        model.mu + model.bi[2],
        model.mu,
    ]
    np.testing.assert_allclose(got, np.clip(expected, lo, hi), rtol=1e-12)
