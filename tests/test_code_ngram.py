"""Kneser–Ney n-gram models of code: a worked example, proper distributions, exact top-k
against brute force, unseen symbols, parameters, and the fast path against plain fits.

The fast path reaches each scenario's statistics by updating the base's integer statistics,
and every probability is computed from integers by the same code whatever the path, so the
fast path must give exactly the plain fit's counts, probabilities and top-k lists.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.core.delta import Delta
from datalever.errors import DataleverError
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.ngram import KneserNey, NgramFastPath, NgramModel
from datalever.tasks.code.ngram_counts import kn_statistics


def files(sequences: list[list[int]], vocab_size: int) -> TokenFiles:
    return TokenFiles.from_sequences(
        [np.asarray(s, dtype=np.int32) for s in sequences], np.arange(len(sequences)), vocab_size
    )


def next_symbol_probs(model: NgramModel, histories: list[list[int]]) -> np.ndarray:
    """Brute force: p(w | history) for every history and every symbol w (tokens, then EOS at
    column V), each read off a file made of the history and w (or of the history alone)."""
    v = model.vocab_size
    queries = [[*h, w] for h in histories for w in range(v)] + [list(h) for h in histories]
    q = files(queries, v)
    p = model.prob(q)
    eos = q.offsets[1:] + np.arange(len(queries))  # each query's last prediction: its EOS
    tokens = p[eos[: len(histories) * v] - 1].reshape(len(histories), v)
    return np.column_stack([tokens, p[eos[len(histories) * v :]]])


def histories_of(query: TokenFiles) -> list[list[int]]:
    """The history of every predicted position of ``query``, in the models' row order."""
    return [list(f[:i]) for f in query for i in range(len(f) + 1)]


# --- a worked example -----------------------------------------------------------------------


def test_worked_example_by_hand():
    """Order 2, V = 3 (tokens 0, 1, 2; EOS = 3, BOS = 4), files 2 1 2 1 0 | 2 2 | 2 1 0 0 2 1.

    Bigram counts (BOS B, EOS E): B2:3, 21:4, 12:1, 10:2, 0E:1, 22:1, 2E:1, 00:1, 02:1, 1E:1.
    Order 2 counts of counts n1..n4 = 7, 1, 1, 1, so Y = 7 / 9 and D1 = 1 - 2 Y 1/7 = 7/9;
    D2 = 2 - 3 Y = -1/3 and D3+ = 3 - 4 Y = -1/9 are not positive: the fallbacks 1 and 1.5.
    Unigram continuation counts (distinct symbols before): 0:2 (1, 0), 1:1 (2),
    2:4 (B, 0, 1, 2), E:3 (0, 1, 2); n1..n4 = 1, 1, 1, 1, Y = 1/3, D1 = 1/3, D2 = 1, D3+ = 5/3.
    Unigrams: total 10, γ = (1/3 · 1 + 1 · 1 + 5/3 · 2) / 10 = 7/15, and with the uniform 1/4
    over the four predicted symbols: p1(1) = (1 - 1/3)/10 + 7/60 = 11/60,
    p1(0) = (2 - 1)/10 + 7/60 = 13/60, p1(2) = (4 - 5/3)/10 + 7/60 = 21/60.
    After 2: counts 21:4, 22:1, 2E:1, total 6, N1 = 2, N3+ = 1,
    γ(2) = (7/9 · 2 + 1.5 · 1) / 6 = 55/108, so
    p(1 | 2) = (4 - 1.5)/6 + 55/108 · 11/60 = 661/1296 and
    p(0 | 2) = 55/108 · 13/60 = 143/1296 (0, the <unk> code, never seen after 2).
    After B: count B2:3, total 3, γ(B) = 1.5/3, p(2 | B) = (3 - 1.5)/3 + 1/2 · 21/60 = 0.675.
    """
    model = KneserNey(order=2).fit(files([[2, 1, 2, 1, 0], [2, 2], [2, 1, 0, 0, 2, 1]], 3))
    assert model.stats.discounts[2].tolist() == pytest.approx([0, 7 / 9, 1.0, 1.5])
    assert model.stats.discounts[1].tolist() == pytest.approx([0, 1 / 3, 1.0, 5 / 3])
    p = model.prob(files([[2, 1], [2, 0]], 3))  # rows: 2|B, 1|2, E|1, 2|B, 0|2, E|0
    assert p[0] == pytest.approx(0.675, rel=1e-12)
    assert p[1] == pytest.approx(661 / 1296, rel=1e-12)
    assert p[4] == pytest.approx(143 / 1296, rel=1e-12)
    grams, counts = model.counts(2)
    assert dict(zip(map(tuple, grams.tolist()), counts.tolist(), strict=True)) == {
        (4, 2): 3, (2, 1): 4, (1, 2): 1, (1, 0): 2, (0, 3): 1,
        (2, 2): 1, (2, 3): 1, (0, 0): 1, (0, 2): 1, (1, 3): 1,
    }  # fmt: skip
    grams, counts = model.counts(1)
    assert grams.ravel().tolist() == [0, 1, 2, 3] and counts.tolist() == [2, 1, 4, 3]


# --- random corpora ---------------------------------------------------------------------------


@st.composite
def corpora(draw, max_files: int = 6, max_length: int = 8) -> TokenFiles:
    """Small corpora over a few tokens (many repeated n-grams), some tokens never used."""
    vocab = draw(st.integers(1, 7))
    used = draw(st.integers(1, vocab))
    token = st.integers(0, used - 1)
    sequences = draw(st.lists(st.lists(token, max_size=max_length), max_size=max_files))
    return files(sequences, vocab)


@st.composite
def queries(draw, vocab: int) -> TokenFiles:
    token = st.integers(0, vocab - 1)
    return files(draw(st.lists(st.lists(token, max_size=6), min_size=1, max_size=3)), vocab)


ORDERS = st.integers(2, 5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(train=corpora(), order=ORDERS, data=st.data())
def test_every_context_gives_a_distribution(train, order, data):
    """Over the vocabulary and EOS, the probabilities of any history sum to 1, all positive."""
    model = KneserNey(order=order).fit(train)
    histories = histories_of(data.draw(queries(train.vocab_size)))
    p = next_symbol_probs(model, histories)
    assert (p > 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    direct = model.prob(data.draw(queries(train.vocab_size)))
    assert ((direct > 0) & (direct <= 1)).all()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(train=corpora(), order=ORDERS, k=st.integers(1, 8), data=st.data())
def test_top_k_is_exact(train, order, k, data):
    """The shortlists give exactly the best k of the whole distribution, ties by code."""
    model = KneserNey(order=order).fit(train)
    k = min(k, model.vocab_size + 1)
    query = data.draw(queries(train.vocab_size))
    p = next_symbol_probs(model, histories_of(query))
    codes = np.arange(p.shape[1])
    expected = np.array([codes[np.lexsort((codes, -row))][:k] for row in p])
    got = model.top_k(query, k)
    np.testing.assert_array_equal(got, expected)
    assert not (got == model.bos).any()


def test_top_k_on_a_larger_corpus():
    """Many contexts with long candidate lists, checked against brute force."""
    rng = np.random.default_rng(7)
    vocab = 40
    zipf = 1.0 / np.arange(1, vocab + 1)
    train = files(
        [rng.choice(vocab, rng.integers(0, 60), p=zipf / zipf.sum()).tolist() for _ in range(40)],
        vocab,
    )
    query = files([rng.choice(vocab, 12).tolist() for _ in range(4)], vocab)
    for order in (2, 3, 5):
        model = KneserNey(order=order).fit(train)
        p = next_symbol_probs(model, histories_of(query))
        codes = np.arange(vocab + 1)
        for k in (1, 5, 41):
            expected = np.array([codes[np.lexsort((codes, -row))][:k] for row in p])
            np.testing.assert_array_equal(model.top_k(query, k), expected)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_rows_follow_files():
    """One prediction per token and one EOS per file, in file order."""
    train = files([[1, 2, 3], [], [3, 3]], 4)
    model = KneserNey().fit(train)
    codes, file_index = model.targets(train)
    assert codes.tolist() == [1, 2, 3, 4, 4, 3, 3, 4] and model.eos == 4 and model.bos == 5
    assert file_index.tolist() == [0, 0, 0, 0, 1, 2, 2, 2]
    assert model.log2_prob(train).shape == (8,)
    assert model.top_k(train, 3).shape == (8, 3)
    with pytest.raises(ValueError, match="k must be"):
        model.top_k(train, 6)
    with pytest.raises(ValueError, match="token codes"):
        model.prob(files([[4]], 5))


def test_unseen_tokens_and_contexts():
    """Tokens never seen share the backoff mass alike; a history never seen backs off to the
    lower orders; an empty corpus gives the uniform distribution."""
    vocab = 6  # 4 and 5 never occur; 0 (<unk>) is a token like any other
    train = files([[0, 1, 2, 1, 2, 3], [1, 2, 0], [2, 2, 1]], vocab)
    model = KneserNey(order=3).fit(train)
    p = next_symbol_probs(model, [[1, 2], [0], [], [4, 5], [5, 4]])
    assert (p > 0).all() and p[:, 4].tolist() == p[:, 5].tolist()
    assert (p[:, 4] < p[:, [0, 1, 2, 3]].min(axis=1)).all()  # every seen token beats them
    # After 4 then 5 (neither ever seen) only the lowest order is left: the continuation
    # counts, discounted, plus their backoff mass spread uniformly over tokens and EOS.
    np.testing.assert_array_equal(p[3], p[4])
    grams, counts = model.counts(1)
    d = model.stats.discounts[1]
    total = counts.sum()
    lowest = np.full(vocab + 1, d[np.minimum(counts, 3)].sum() / total / (vocab + 1))
    lowest[grams[:, 0]] += (counts - d[np.minimum(counts, 3)]) / total
    np.testing.assert_allclose(p[3], lowest, rtol=1e-12)
    empty = KneserNey(order=4).fit(files([], vocab))
    np.testing.assert_allclose(next_symbol_probs(empty, [[], [1, 2, 3]]), 1 / (vocab + 1))
    assert empty.top_k(train, 2).tolist() == [[0, 1]] * (len(train.tokens) + len(train))


def test_parameters_are_checked():
    assert KneserNey().order == 3
    for bad in (1, 6, 3.0, True, "3"):
        with pytest.raises(DataleverError, match="kneser_ney.*order"):
            KneserNey(order=bad)
    with pytest.raises(DataleverError, match="no parameter"):
        KneserNey.configure(discount=0.5)
    assert KneserNey.name == "kneser_ney" and KneserNey.task == "code"


# --- the fast path ------------------------------------------------------------------------------


@st.composite
def deltas(draw, base: TokenFiles) -> Delta:
    """Files removed (any subset, repeats and positions from the end included) and files added,
    with tokens the base never used."""
    n = len(base)
    removed = draw(st.lists(st.integers(-n, n - 1), max_size=n + 2)) if n else []
    added = None
    if draw(st.booleans()):
        token = st.integers(0, base.vocab_size - 1)
        added = files(draw(st.lists(st.lists(token, max_size=8), max_size=3)), base.vocab_size)
    return Delta(np.asarray(removed, dtype=np.int64), added)


def assert_same_model(fast: NgramModel, plain: NgramModel, query: TokenFiles) -> None:
    for j in range(1, plain.order + 1):
        for a, b in zip(fast.counts(j), plain.counts(j), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fast.stats.discounts[j], plain.stats.discounts[j])
    np.testing.assert_array_equal(fast.prob(query), plain.prob(query))
    k = min(3, plain.vocab_size + 1)
    np.testing.assert_array_equal(fast.top_k(query, k), plain.top_k(query, k))


def assert_statistics_consistent(model: NgramModel) -> None:
    """The updated statistics equal a full recount on the same (extended) tables."""
    full = kn_statistics(model.tables, model.stats.counts[model.order].dense())
    for j in range(1, model.order + 1):
        for name in ("counts", "totals", "buckets"):
            np.testing.assert_array_equal(
                getattr(model.stats, name)[j].dense(), getattr(full, name)[j].dense()
            )
        np.testing.assert_array_equal(model.stats.count_of_counts[j], full.count_of_counts[j])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=corpora(), order=ORDERS, data=st.data())
def test_fast_path_equals_plain_fit(base, order, data):
    learner = KneserNey(order=order)
    fast = learner.fast_path(base)
    assert isinstance(fast, NgramFastPath)
    scenarios = [data.draw(deltas(base)) for _ in range(3)]
    query = data.draw(queries(base.vocab_size))
    for delta, model in zip(scenarios, fast.fit_many(scenarios), strict=True):
        assert_same_model(model, learner.fit(delta.apply(base)), query)
        assert_statistics_consistent(model)


def test_fast_path_edge_scenarios():
    """Everything removed, nothing changed, a file removed and added back, and added files
    with a larger vocabulary (every code's meaning moves: fitted plainly)."""
    base = files([[1, 2, 3, 1, 2], [2, 3], [], [3, 3, 3, 0]], 4)
    query = files([[1, 2, 3, 0], [3]], 4)
    bigger = files([[5, 1, 2], [6]], 7)
    scenarios = [
        Delta(np.arange(4)),
        Delta(np.zeros(0, dtype=np.int64)),
        Delta(np.array([0]), files([[1, 2, 3, 1, 2]], 4)),
        Delta(np.array([1, 1, -1]), files([[0, 0, 0, 0, 0, 0]], 4)),
        Delta(np.array([2]), bigger),
    ]
    for order in (2, 3, 5):
        learner = KneserNey(order=order)
        for delta, model in zip(
            scenarios, learner.fast_path(base).fit_many(scenarios), strict=True
        ):
            plain = learner.fit(delta.apply(base))
            assert model.vocab_size == plain.vocab_size
            assert_same_model(model, plain, query)


def test_fast_path_on_a_larger_corpus():
    """Deltas of every size on a corpus with thousands of n-grams."""
    rng = np.random.default_rng(3)
    vocab = 300
    zipf = 1.0 / np.arange(1, vocab + 1) ** 1.1
    seqs = [rng.choice(vocab, rng.integers(0, 200), p=zipf / zipf.sum()) for _ in range(60)]
    base = files([s.tolist() for s in seqs], vocab)
    query = files([rng.choice(vocab, 30).tolist() for _ in range(5)], vocab)
    for order in (3, 5):
        learner = KneserNey(order=order)
        scenarios = [
            Delta(np.sort(rng.choice(60, size, replace=False)), added)
            for size in (1, 5, 30, 59)
            for added in (None, files([rng.choice(vocab, 50).tolist()], vocab))
        ]
        for delta, model in zip(
            scenarios, learner.fast_path(base).fit_many(scenarios), strict=True
        ):
            assert_same_model(model, learner.fit(delta.apply(base)), query)
            assert_statistics_consistent(model)


def test_patched_statistics_read_through_a_slot_map_exactly():
    """Scoring many held-out positions reads a scenario's patched statistics through a map
    of the patched rows; it must give what the dense array gives, as a search does."""
    from datalever.tasks.code.ngram_counts import LARGE_TAKE, Patched

    rng = np.random.default_rng(0)
    base = rng.integers(0, 9, size=20_000)
    ids = np.sort(rng.choice(25_000, size=300, replace=False))
    patched = Patched(base, 25_000, ids, rng.integers(10, 19, size=300))
    dense = patched.dense()
    many = rng.integers(0, 25_000, size=3 * LARGE_TAKE)
    np.testing.assert_array_equal(patched.take(many), dense[many])
    np.testing.assert_array_equal(patched.take(many[:100]), dense[many[:100]])


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 3000),
    data=st.data(),
)
def test_distinct_ids_equal_numpy_unique(size, data):
    """A scenario's changed ids are grouped by marking them over the table when they are many
    and by sorting when they are few: both must give ``np.unique``'s ids and inverse."""
    from datalever.tasks.code.ngram_counts import _group, distinct

    keys = np.asarray(data.draw(st.lists(st.integers(0, size - 1), max_size=400)), dtype=np.int64)
    want_ids, want_inverse = np.unique(keys, return_inverse=True)
    for grouped in (distinct, _group):  # numpy's, and the compiled one of the update kernel
        ids, inverse = grouped(keys, size)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(inverse, want_inverse)
        assert ids.dtype == np.int64 and inverse.dtype == want_inverse.dtype
