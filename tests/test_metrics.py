"""Every metric against worked examples computed by hand, in both evaluation modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datalever.errors import DataleverError
from datalever.learners.base import Model
from datalever.metrics import (
    HeldOut,
    Metric,
    TopNTask,
    evaluate_ratings,
    evaluate_topn,
    group_value,
    parse_metric,
)

LOG2_3 = math.log2(3)  # 1.5849625...


class FixedScores(Model):
    """The model under evaluation: returns a fixed score for each (user, item) pair."""

    def __init__(self, table: dict[tuple[int, int], float], n_items: int = 0) -> None:
        self.table = table
        self.n_items = n_items

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.array([self.table[(int(u), int(i))] for u, i in zip(users, items, strict=True)])


class FixedMatrix(Model):
    """The model under evaluation for top-N lists: a dense user x item score matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.asarray(matrix, dtype=float)
        self.n_items = self.matrix.shape[1]

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.matrix[users, items]


def value(name: str, ev, members: np.ndarray | None = None) -> float:
    metric = parse_metric(name)
    num, den = metric.per_user(ev)
    if members is None:
        members = np.ones(ev.n_users, dtype=bool)
    return group_value(metric, num, den, members)


# ------------------------------------------------------------------------ ratings mode
#
# Four users; user 3 has no held-out ratings.
#
# user 0: items 0..3, ratings [5, 3, 4, 1], scores [2, 4, 3, 1]
#         ranked by score: item1 (r=3), item2 (r=4), item0 (r=5), item3 (r=1)
#         relevant (r >= 4): items 0 and 2 -> n_relevant = 2
# user 1: items 0, 1, ratings [4, 2], scores [1, 5]
#         ranked: item1 (r=2), item0 (r=4); n_relevant = 1
# user 2: items 0, 1, 2, ratings [3, 2, 1], scores [3, 2, 1] (perfect order); n_relevant = 0

USERS = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
ITEMS = np.array([0, 1, 2, 3, 0, 1, 0, 1, 2])
RATINGS = np.array([5.0, 3.0, 4.0, 1.0, 4.0, 2.0, 3.0, 2.0, 1.0])
SCORES = np.array([2.0, 4.0, 3.0, 1.0, 1.0, 5.0, 3.0, 2.0, 1.0])
HELD_OUT = HeldOut(USERS, ITEMS, RATINGS, n_users=4)


def stub() -> FixedScores:
    table = {(int(u), int(i)): float(s) for u, i, s in zip(USERS, ITEMS, SCORES, strict=True)}
    return FixedScores(table)


@pytest.fixture
def ev():
    return evaluate_ratings(stub(), HELD_OUT, relevance_threshold=4, tie_seed=0, errors=True)


def test_ranked_lists_follow_scores(ev):
    assert ev.entry_user.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2]
    assert ev.entry_rank.tolist() == [1, 2, 3, 4, 1, 2, 1, 2, 3]
    assert ev.entry_rel.tolist() == [3, 4, 5, 1, 2, 4, 3, 2, 1]
    assert ev.ideal_rel.tolist() == [5, 4, 3, 1, 4, 2, 3, 2, 1]
    assert ev.n_test.tolist() == [4, 2, 3, 0]
    assert ev.n_relevant.tolist() == [2, 1, 0, 0]


def test_ndcg_at_3(ev):
    # user 0: DCG@3  = (2^3-1)/log2(2) + (2^4-1)/log2(3) + (2^5-1)/log2(4)
    #                = 7 + 15/1.58496 + 31/2 = 7 + 9.46395 + 15.5 = 31.96395
    #         IDCG@3 = (2^5-1)/1 + (2^4-1)/log2(3) + (2^3-1)/2 = 31 + 9.46395 + 3.5 = 43.96395
    #         nDCG   = 0.727049
    # user 1: 2 held-out ratings < k = 3 -> excluded
    # user 2: perfect order -> 1.0
    # user 3: no ratings -> excluded
    dcg0 = 7 + 15 / LOG2_3 + 31 / 2
    idcg0 = 31 + 15 / LOG2_3 + 7 / 2
    assert dcg0 / idcg0 == pytest.approx(0.727049, abs=1e-6)
    num, den = parse_metric("ndcg@3").per_user(ev)
    assert den.tolist() == [1, 0, 1, 0]
    assert num[0] == pytest.approx(dcg0 / idcg0)
    assert num[2] == pytest.approx(1.0)
    assert value("ndcg@3", ev) == pytest.approx((dcg0 / idcg0 + 1.0) / 2)


def test_ndcg_at_2_counts_user_with_exactly_k_ratings(ev):
    # user 0: DCG@2 = 7/1 + 15/log2(3) = 16.46395; IDCG@2 = 31 + 15/log2(3) = 40.46395
    # user 1: DCG@2 = (2^2-1)/1 + (2^4-1)/log2(3) = 3 + 9.46395 = 12.46395
    #         IDCG@2 = 15/1 + 3/log2(3) = 15 + 1.89279 = 16.89279 -> 0.737826
    # user 2: 1.0
    u0 = (7 + 15 / LOG2_3) / (31 + 15 / LOG2_3)
    u1 = (3 + 15 / LOG2_3) / (15 + 3 / LOG2_3)
    assert u1 == pytest.approx(0.737826, abs=1e-6)
    assert value("ndcg@2", ev) == pytest.approx((u0 + u1 + 1.0) / 3)
    # ndcg@5: nobody has 5 held-out ratings -> no user qualifies -> NaN
    assert math.isnan(value("ndcg@5", ev))


def test_precision(ev):
    # user 0: m = min(3, 2) = 2; top 2 = (r=3, r=4) -> 1 hit -> 1/2
    # user 1: m = min(3, 1) = 1; top 1 = (r=2) -> 0 hits -> 0/1
    # user 2: no relevant item -> excluded; user 3 too
    num, den = parse_metric("precision@3").per_user(ev)
    assert den.tolist() == [1, 1, 0, 0]
    assert num.tolist() == [0.5, 0.0, 0.0, 0.0]
    assert value("precision@3", ev) == pytest.approx(0.25)
    # precision@1: user 0 top 1 (r=3) -> 0; user 1 top 1 (r=2) -> 0
    assert value("precision@1", ev) == 0.0


def test_recall(ev):
    # recall@2: user 0 top 2 = (r=3, r=4) -> 1/2; user 1 top 2 = (r=2, r=4) -> 1/1
    assert value("recall@2", ev) == pytest.approx((0.5 + 1.0) / 2)
    # recall@3: user 0 top 3 holds both relevant -> 2/2; user 1 -> 1/1
    assert value("recall@3", ev) == pytest.approx(1.0)
    # recall@1: nobody has a relevant item first
    assert value("recall@1", ev) == 0.0
    num, den = parse_metric("recall@2").per_user(ev)
    assert den.tolist() == [1, 1, 0, 0]


def test_hitrate(ev):
    # hitrate@1: neither user 0 (r=3 first) nor user 1 (r=2 first) -> 0/2
    # hitrate@2: user 0 has r=4 at rank 2, user 1 has r=4 at rank 2 -> 2/2
    assert value("hitrate@1", ev) == 0.0
    assert value("hitrate@2", ev) == 1.0
    # over user 0 and user 2 (no relevant: excluded) -> 1/1
    assert value("hitrate@2", ev, np.array([True, False, True, False])) == 1.0


def test_hits_and_surfaced_hits(ev):
    # hits: relevant items among each user's top n_relevant:
    #   user 0: top 2 = (r=3, r=4) -> 1; user 1: top 1 = (r=2) -> 0; user 2: top 0 -> 0
    #   averaged over users with held-out ratings (0, 1, 2): 1/3
    num, den = parse_metric("hits").per_user(ev)
    assert num.tolist() == [1, 0, 0, 0]
    assert den.tolist() == [1, 1, 1, 0]
    assert value("hits", ev) == pytest.approx(1 / 3)
    # surfaced_hits: a group's hits over all relevant held-out records (2 + 1 + 0 = 3)
    assert value("surfaced_hits", ev) == pytest.approx(1 / 3)
    only_0 = np.array([True, False, False, False])
    not_0 = ~only_0
    assert value("surfaced_hits", ev, only_0) == pytest.approx(1 / 3)
    assert value("surfaced_hits", ev, not_0) == 0.0
    # groups add up to the total
    assert value("surfaced_hits", ev, only_0) + value("surfaced_hits", ev, not_0) == (
        pytest.approx(value("surfaced_hits", ev))
    )


def test_rmse_and_mae(ev):
    # errors (score - rating): user 0: [2-5, 4-3, 3-4, 1-1] = [-3, 1, -1, 0]
    #                          user 1: [1-4, 5-2] = [-3, 3]; user 2: [0, 0, 0]
    # squared: 9+1+1+0 = 11, 9+9 = 18, 0 -> 29 over 9 records
    # absolute: 3+1+1+0 = 5, 3+3 = 6, 0 -> 11 over 9 records
    assert ev.sq_error.tolist() == [11, 18, 0, 0]
    assert ev.abs_error.tolist() == [5, 6, 0, 0]
    assert value("rmse", ev) == pytest.approx(math.sqrt(29 / 9))
    assert value("mae", ev) == pytest.approx(11 / 9)


def test_group_value_over_subsets(ev):
    users_01 = np.array([True, True, False, False])
    # rmse over users 0 and 1: sqrt((11 + 18) / (4 + 2))
    assert value("rmse", ev, users_01) == pytest.approx(math.sqrt(29 / 6))
    assert value("mae", ev, users_01) == pytest.approx(11 / 6)
    # precision@3 over user 0 only: 1/2
    assert value("precision@3", ev, np.array([True, False, False, False])) == 0.5
    # ndcg@3 over user 1 only: nobody qualifies (2 ratings < 3) -> NaN
    assert math.isnan(value("ndcg@3", ev, np.array([False, True, False, False])))
    # any metric over an empty group -> NaN (except surfaced_hits, whose denominator is
    # everyone's, which gives 0)
    nobody = np.zeros(4, dtype=bool)
    assert math.isnan(value("recall@2", ev, nobody))
    assert value("surfaced_hits", ev, nobody) == 0.0


def test_errors_need_rating_estimates():
    ev = evaluate_ratings(stub(), HELD_OUT, relevance_threshold=4, tie_seed=0, errors=False)
    assert ev.sq_error is None
    with pytest.raises(DataleverError, match="rating estimates"):
        parse_metric("rmse").per_user(ev)


def test_relevance_threshold_is_applied():
    # With threshold 5 only user 0's item 0 (r=5) is relevant. It sits at rank 3:
    # precision@3: m = min(3, 1) = 1, top 1 = (r=3) -> 0; recall@3 -> 1/1
    ev = evaluate_ratings(stub(), HELD_OUT, relevance_threshold=5, tie_seed=0, errors=False)
    assert ev.n_relevant.tolist() == [1, 0, 0, 0]
    assert value("precision@3", ev) == 0.0
    assert value("recall@3", ev) == 1.0
    assert value("recall@2", ev) == 0.0


# ---------------------------------------------------------------------------- ties

TIE_USERS = np.repeat([0, 1], 8)
TIE_ITEMS = np.tile(np.arange(8), 2)
TIE_RATINGS = np.tile(np.array([5.0, 4, 3, 2, 1, 5, 4, 3]), 2)
TIE_HELD_OUT = HeldOut(TIE_USERS, TIE_ITEMS, TIE_RATINGS, n_users=2)


def tie_model(score: float = 3.0) -> FixedScores:
    return FixedScores({(int(u), int(i)): score for u, i in zip(TIE_USERS, TIE_ITEMS, strict=True)})


def tie_order(model: Model, seed: int) -> list[float]:
    ev = evaluate_ratings(model, TIE_HELD_OUT, relevance_threshold=4, tie_seed=seed, errors=False)
    return ev.entry_rel.tolist()


def test_ties_are_deterministic_for_a_seed():
    assert tie_order(tie_model(), 7) == tie_order(tie_model(), 7)


def test_ties_broken_alike_for_models_with_equal_scores():
    # two distinct model objects with the same (tied) scores -> the same order, same metrics
    a = evaluate_ratings(tie_model(3.0), TIE_HELD_OUT, 4, tie_seed=11, errors=False)
    b = evaluate_ratings(tie_model(3.0), TIE_HELD_OUT, 4, tie_seed=11, errors=False)
    np.testing.assert_array_equal(a.entry_rel, b.entry_rel)
    assert value("ndcg@5", a) == value("ndcg@5", b)
    # the order is a property of the scores' ties, not their level
    c = evaluate_ratings(tie_model(1.5), TIE_HELD_OUT, 4, tie_seed=11, errors=False)
    np.testing.assert_array_equal(a.entry_rel, c.entry_rel)


def test_tie_seed_matters_and_does_not_reorder_distinct_scores():
    orders = {tuple(tie_order(tie_model(), seed)) for seed in range(10)}
    assert len(orders) > 1
    # distinct scores are never reordered by the tie seed
    for seed in range(5):
        ev = evaluate_ratings(stub(), HELD_OUT, 4, tie_seed=seed, errors=False)
        assert ev.entry_rel.tolist() == [3, 4, 5, 1, 2, 4, 3, 2, 1]


def test_ties_only_shuffle_among_equal_scores():
    # user 0: items 0..3 score 2 (tied), items 4..7 score 1 (tied): every order keeps the
    # first block ahead of the second
    table = {(0, i): (2.0 if i < 4 else 1.0) for i in range(8)}
    table.update({(1, i): 0.0 for i in range(8)})
    for seed in range(5):
        ev = evaluate_ratings(FixedScores(table), TIE_HELD_OUT, 4, tie_seed=seed, errors=False)
        first = ev.entry_rel[:4]
        assert sorted(first.tolist()) == [2, 3, 4, 5]


# ------------------------------------------------------------------------ top-N mode
#
# Six items. Training (known) records: user 0 knows items 0, 1; user 1 knows item 5;
# user 2 knows item 3. Held out: user 0: items 2, 4; user 1: item 0. User 2 has none.
#
# user 0 scores [9, 8, 1, 7, 5, 2]: known 0, 1 are skipped -> list item3, item4, item5
#        (k = 3); relevance [0, 1, 0]
# user 1 scores [1, 2, 3, 4, 5, 9]: known 5 is skipped -> list item4, item3, item2;
#        relevance [0, 0, 0]

TOPN_MATRIX = np.array(
    [
        [9.0, 8, 1, 7, 5, 2],
        [1.0, 2, 3, 4, 5, 9],
        [0.0, 0, 0, 9, 0, 0],
    ]
)
KNOWN_USERS = np.array([0, 0, 1, 2])
KNOWN_ITEMS = np.array([0, 1, 5, 3])
TOPN_HELD_OUT = HeldOut(
    users=np.array([0, 0, 1]), items=np.array([2, 4, 0]), ratings=np.ones(3), n_users=3
)


@pytest.fixture
def topn():
    return evaluate_topn(FixedMatrix(TOPN_MATRIX), TOPN_HELD_OUT, KNOWN_USERS, KNOWN_ITEMS, k=3)


def test_topn_lists_and_binary_relevance(topn):
    assert topn.entry_user.tolist() == [0, 0, 0, 1, 1, 1]
    assert topn.entry_rank.tolist() == [1, 2, 3, 1, 2, 3]
    assert topn.entry_rel.tolist() == [0, 1, 0, 0, 0, 0]
    assert topn.n_test.tolist() == [2, 1, 0]
    assert topn.n_relevant.tolist() == [2, 1, 0]
    assert set(np.unique(topn.entry_rel)) <= {0.0, 1.0}


def test_topn_never_recommends_known_items():
    # every item is scored highest where it is known; with k = 3 < unknown items the lists
    # must still avoid them. Recover the items: relevance marks which held-out item was hit.
    rng = np.random.default_rng(0)
    n_users, n_items = 5, 12
    matrix = rng.random((n_users, n_items))
    known_u, known_i = [], []
    for u in range(n_users):
        for i in rng.choice(n_items, 4, replace=False):
            known_u.append(u)
            known_i.append(int(i))
            matrix[u, i] = 10.0 + i  # would top the list if allowed
    # hold out every unknown item, so an entry is relevant iff it is not known
    held_u, held_i = [], []
    known = set(zip(known_u, known_i, strict=True))
    for u in range(n_users):
        for i in range(n_items):
            if (u, i) not in known:
                held_u.append(u)
                held_i.append(i)
    held = HeldOut(np.array(held_u), np.array(held_i), np.ones(len(held_u)), n_users)
    ev = evaluate_topn(FixedMatrix(matrix), held, np.array(known_u), np.array(known_i), k=5)
    assert len(ev.entry_rel) == n_users * 5
    assert ev.entry_rel.min() == 1.0  # no known item in any list
    assert value("precision@5", ev) == 1.0


def test_topn_short_of_unknown_items_recommends_fewer():
    # 6 items, user 0 knows 3 of them: only 3 can be recommended even at k = 5
    held = HeldOut(np.array([0]), np.array([0]), np.ones(1), 1)
    ev = evaluate_topn(
        FixedMatrix(np.arange(6.0)[None, :]), held, np.array([0, 0, 0]), np.array([3, 4, 5]), 5
    )
    assert len(ev.entry_user) == 3


def test_topn_ndcg(topn):
    # user 0: DCG@3 = 0/1 + 1/log2(3) + 0/2 = 0.63093; IDCG@3 (2 held-out) = 1/1 + 1/log2(3)
    #         = 1.63093 -> nDCG = 0.38685
    # user 1: DCG = 0, IDCG = 1 -> 0 (counted: top-N mode needs only one held-out item)
    # user 2: no held-out item -> excluded
    u0 = (1 / LOG2_3) / (1 + 1 / LOG2_3)
    assert u0 == pytest.approx(0.386853, abs=1e-6)
    num, den = parse_metric("ndcg@3").per_user(topn)
    assert den.tolist() == [1, 1, 0]
    assert value("ndcg@3", topn) == pytest.approx(u0 / 2)


def test_topn_precision_recall_hitrate(topn):
    # precision@3: user 0: 1 hit / 3; user 1: 0 / 3 -> (1/3 + 0) / 2 = 1/6
    assert value("precision@3", topn) == pytest.approx(1 / 6)
    # recall@3: user 0: 1 / 2 held-out; user 1: 0 / 1 -> 1/4
    assert value("recall@3", topn) == pytest.approx(1 / 4)
    # hitrate@3: user 0 yes, user 1 no -> 1/2
    assert value("hitrate@3", topn) == pytest.approx(1 / 2)
    # at cutoff 1 user 0's first item (item 3) is not held out -> all zero
    assert value("hitrate@1", topn) == 0.0
    assert value("recall@1", topn) == 0.0
    # over user 0 alone
    only_0 = np.array([True, False, False])
    assert value("precision@3", topn, only_0) == pytest.approx(1 / 3)
    assert value("recall@3", topn, only_0) == pytest.approx(1 / 2)
    assert value("ndcg@3", topn, only_0) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))


def test_topn_has_no_rating_errors(topn):
    assert topn.sq_error is None
    with pytest.raises(DataleverError):
        parse_metric("mae").per_user(topn)


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ndcg@10", Metric("ndcg", 10)),
        ("precision@5", Metric("precision", 5)),
        ("recall@20", Metric("recall", 20)),
        ("hitrate@1", Metric("hitrate", 1)),
        ("hits", Metric("hits")),
        ("surfaced_hits", Metric("surfaced_hits")),
        ("rmse", Metric("rmse")),
        ("mae", Metric("mae")),
        ("  NDCG@10 ", Metric("ndcg", 10)),
    ],
)
def test_parse_metric_valid(name, expected):
    assert parse_metric(name) == expected


def test_metric_properties():
    assert parse_metric("ndcg@10").name == "ndcg@10"
    assert parse_metric("rmse").name == "rmse"
    assert not parse_metric("rmse").higher_is_better
    assert not parse_metric("mae").higher_is_better
    assert parse_metric("mae").needs_ratings
    assert parse_metric("ndcg@10").higher_is_better
    assert not parse_metric("ndcg@10").needs_ratings
    assert parse_metric("surfaced_hits").denominator_over_everyone
    assert not parse_metric("hits").denominator_over_everyone


@pytest.mark.parametrize("name", ["auc", "foo@10", "ndcg@ten", "ndcg@-1", "", "map@10"])
def test_parse_metric_unknown(name):
    with pytest.raises(DataleverError, match="Unknown metric") as err:
        parse_metric(name)
    # the fix lists the metrics there are
    assert "ndcg@K" in err.value.fix
    assert "rmse" in err.value.fix


@pytest.mark.parametrize("name", ["ndcg", "precision", "recall", "hitrate"])
def test_parse_metric_missing_cutoff(name):
    with pytest.raises(DataleverError, match="needs a cutoff") as err:
        parse_metric(name)
    assert f"{name}@10" in err.value.fix


@pytest.mark.parametrize("name", ["rmse@10", "mae@5", "hits@3", "surfaced_hits@1"])
def test_parse_metric_extra_cutoff(name):
    with pytest.raises(DataleverError, match="takes no cutoff") as err:
        parse_metric(name)
    assert name.split("@")[0] in err.value.fix


def test_parse_metric_zero_cutoff():
    with pytest.raises(DataleverError, match="must lie between 1 and"):
        parse_metric("ndcg@0")


def reference_top_lists(matrix, known, held, k, tie_order):
    """The plain computation the compiled top-N selection must equal: per held-out user, the
    unknown items scoring above -inf (NaN excluded), by score descending, then by position in
    the tie order."""
    position = np.argsort(tie_order)
    lists = {}
    for u in sorted(set(held.users.tolist())):
        candidates = [
            (-matrix[u, i], position[i], i)
            for i in range(matrix.shape[1])
            if (u, i) not in known and matrix[u, i] > -np.inf
        ]
        lists[u] = [i for _, _, i in sorted(candidates)[:k]]
    return lists


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 9),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_topn_selection_equals_a_plain_sort(n_users, n_items, k, seed):
    rng = np.random.default_rng(seed)
    # few distinct values, so ties are common; some NaN, -inf and +inf
    matrix = rng.choice(
        [0.0, 0.5, 1.0, 2.0, np.nan, -np.inf, np.inf],
        size=(n_users, n_items),
        p=[0.25, 0.2, 0.2, 0.2, 0.05, 0.05, 0.05],
    )
    known_mask = rng.random((n_users, n_items)) < 0.3
    known_u, known_i = np.nonzero(known_mask)
    held_mask = ~known_mask & (rng.random((n_users, n_items)) < 0.4)
    held_u, held_i = np.nonzero(held_mask)
    held = HeldOut(held_u, held_i, np.ones(len(held_u)), n_users)
    task = TopNTask(held, known_u, known_i, k, batch=2, tie_seed=seed)
    users, items, rel = task.top_lists(FixedMatrix(matrix))
    known = set(zip(known_u, known_i, strict=True))
    expected = reference_top_lists(matrix, known, held, k, task.tie_order(n_items))
    held_set = set(zip(held_u.tolist(), held_i.tolist(), strict=True))
    assert users.tolist() == [u for u, items in expected.items() for _ in items]
    assert items.tolist() == [i for items in expected.values() for i in items]
    assert rel.tolist() == [float((u, i) in held_set) for u, its in expected.items() for i in its]
    ev = task.evaluate(FixedMatrix(matrix))
    assert ev.entry_rank.tolist() == [r + 1 for its in expected.values() for r in range(len(its))]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_ratings_ranking_equals_the_plain_sort(n_records, n_users, seed):
    """The compiled per-user ranking equals the plain computation: records shuffled in the tie
    order, then stably sorted by user and by score descending (NaN last)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_records)
    scores = rng.choice([1.0, 2.5, 3.0, 4.0, np.nan, np.inf, -np.inf], n_records)
    held = HeldOut(users, rng.integers(0, 9, n_records), rng.integers(1, 6, n_records), n_users)
    ev = evaluate_ratings(FixedPairs(scores), held, 4, tie_seed=seed, errors=False)
    perm = np.random.default_rng(seed).permutation(n_records)
    order = perm[np.lexsort((-scores[perm], users[perm]))]
    assert ev.entry_user.tolist() == users[order].tolist()
    assert ev.entry_rel.tolist() == held.ratings[order].astype(float).tolist()


class FixedPairs(Model):
    """Scores given per held-out record, in record order."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.scores


def test_a_top_n_list_needs_at_least_one_entry():
    with pytest.raises(ValueError, match="k >= 1"):
        TopNTask(TOPN_HELD_OUT, KNOWN_USERS, KNOWN_ITEMS, k=0)
