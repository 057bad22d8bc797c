"""The transformer language model of code: it learns, is reproducible, gives proper
distributions over the same symbols as the n-gram models, and refuses bad parameters.

Models are tiny (a few thousand weights, a few hundred tokens) so the file runs in seconds;
torch runs on one thread here, where such small matrices gain nothing from more.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from datalever.core.delta import Delta  # noqa: E402
from datalever.errors import DataleverError  # noqa: E402
from datalever.tasks.code import transformer  # noqa: E402
from datalever.tasks.code.files import TokenFiles  # noqa: E402
from datalever.tasks.code.ngram import KneserNey  # noqa: E402
from datalever.tasks.code.transformer import TransformerLM, TransformerModel  # noqa: E402

V = 12
SMALL = dict(context=8, d_model=16, layers=1, heads=2, batch_windows=8, lr=1e-2, device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def files(sequences: list, vocab_size: int = V) -> TokenFiles:
    return TokenFiles.from_sequences(
        [np.asarray(s, dtype=np.int32) for s in sequences], np.arange(len(sequences)), vocab_size
    )


def cycles(n_files: int = 30, seed: int = 0) -> TokenFiles:
    """Pieces of one cycle of six codes: after the first token, every next one is certain."""
    rng = np.random.default_rng(seed)
    cycle = np.tile([3, 1, 4, 5, 9, 2], 4)
    starts, lengths = rng.integers(0, 6, n_files), rng.integers(5, 18, n_files)
    return files([cycle[s : s + n] for s, n in zip(starts, lengths, strict=True)])


def mixed(seed: int = 1) -> TokenFiles:
    """Random files over the whole vocabulary, longer than a window, and an empty file."""
    rng = np.random.default_rng(seed)
    return files([rng.integers(0, V, n) for n in (0, 3, 8, 9, 21)])


@pytest.fixture(scope="module")
def model() -> TransformerModel:
    return TransformerLM(**SMALL, epochs=3).fit(cycles())


def ranked(p: np.ndarray) -> np.ndarray:
    """Codes by decreasing probability, ties by the lower code, row by row."""
    codes = np.broadcast_to(np.arange(p.shape[1]), p.shape)
    return np.lexsort((codes, -p), axis=1)


def test_training_learns_a_repetitive_corpus():
    train = cycles()
    fitted = TransformerLM(**SMALL, epochs=10).fit(train)
    bits = -fitted.log2_prob(train).mean()
    assert bits < 0.5 * np.log2(V + 1), bits  # uniform: log2(13) = 3.7 bits


def test_same_seed_same_model_other_seed_another():
    train, query = cycles(), mixed()
    a = TransformerLM(**SMALL, seed=7).fit(train).prob(query)
    b = TransformerLM(**SMALL, seed=7).fit(train).prob(query)
    c = TransformerLM(**SMALL, seed=8).fit(train).prob(query)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_callers_random_state_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TransformerLM(**SMALL).fit(cycles(5))
    assert torch.equal(torch.rand(3), expected)


def test_rows_and_targets_are_the_ngram_models():
    query = mixed()
    ngram = KneserNey(order=2).fit(query)
    fitted = TransformerLM(**SMALL).fit(query)
    for ours, theirs in zip(fitted.targets(query), ngram.targets(query), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert (fitted.eos, fitted.bos) == (ngram.eos, ngram.bos) == (V, V + 1)
    assert len(fitted.prob(query)) == len(fitted.log2_prob(query)) == len(query.tokens) + 5


def test_distribution_sums_to_one_and_holds_prob(model):
    query = mixed()
    d = model.distribution(query)
    assert d.shape == (len(query.tokens) + len(query), V + 1)
    np.testing.assert_allclose(d.sum(axis=1), 1.0, atol=1e-6)
    symbols, _ = model.targets(query)
    np.testing.assert_array_equal(d[np.arange(len(symbols)), symbols], model.prob(query))
    np.testing.assert_allclose(np.log2(model.prob(query)), model.log2_prob(query))


def test_brute_force_distribution(model):
    """Each symbol's probability after a history, read off a file of the history and the
    symbol (EOS: the history alone), sums to 1 and matches :meth:`distribution`, across a
    window boundary too (histories of 7 and 8 tokens: positions 8 and 9 with context 8)."""
    rng = np.random.default_rng(2)
    for history in ([], [3, 1], list(rng.integers(0, V, 7)), list(rng.integers(0, V, 8))):
        queries = files([[*history, w] for w in range(V)] + [history])
        p = model.prob(queries)
        last = queries.offsets[1:] + np.arange(len(queries))  # each query's EOS row
        brute = np.append(p[last[:V] - 1], p[last[V]])
        assert brute.sum() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(brute, model.distribution(files([history]))[-1], rtol=1e-5)


def test_conditioning_is_the_windows_own_prefix(model):
    """With context 8, position 9 (the 9th token) starts a window: it sees only token 8."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, V, 12), rng.integers(0, V, 12)
    b[7:] = a[7:]  # same from token 8 on, different before
    pa, pb = model.prob(files([a])), model.prob(files([b]))
    np.testing.assert_allclose(pa[8:], pb[8:], rtol=1e-5)
    assert not np.allclose(pa[:8], pb[:8])


@pytest.mark.parametrize("k", [1, 3, V + 1])
def test_top_k_is_the_head_of_the_distribution(model, k):
    query = mixed()
    top = model.top_k(query, k)
    np.testing.assert_array_equal(top, ranked(model.distribution(query))[:, :k])
    assert (top != model.bos).all()


def test_top_k_checks_k(model):
    with pytest.raises(ValueError, match="k must be"):
        model.top_k(mixed(), V + 2)


def test_vocab_cap_shares_unk_and_sums_to_one():
    train = cycles()  # codes 1 2 3 4 5 9 seen, 1 and 3 most often in some order
    fitted = TransformerLM(**SMALL, vocab_cap=4).fit(train)
    counts = np.bincount(train.tokens, minlength=V)
    kept = set(fitted.classes.code[1:-1].tolist())
    assert 0 in fitted.classes.code and len(kept) == 3
    assert min(counts[list(kept)]) >= max(np.delete(counts[1:], np.array(list(kept)) - 1))
    query = mixed()
    d = fitted.distribution(query)
    np.testing.assert_allclose(d.sum(axis=1), 1.0, atol=1e-6)
    shared = fitted.classes.unk
    assert len(shared) == V - 3 and shared[0] == 0
    np.testing.assert_array_equal(d[:, shared], np.repeat(d[:, :1], len(shared), axis=1))
    for k in (1, 5, V + 1):  # ties among the shared codes go to the lower code
        np.testing.assert_array_equal(fitted.top_k(query, k), ranked(d)[:, :k])


def test_models_pickle(model):
    query = mixed()
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.prob(query), model.prob(query))


def test_empty_inputs():
    fitted = TransformerLM(**SMALL).fit(files([]))
    assert fitted.prob(files([])).shape == (0,)
    assert fitted.top_k(files([]), 2).shape == (0, 2)
    np.testing.assert_allclose(fitted.distribution(files([[]])).sum(), 1.0, atol=1e-6)


def test_codes_outside_the_vocabulary_are_refused(model):
    with pytest.raises(ValueError, match="token codes must lie in"):
        model.prob(files([[V]], vocab_size=V + 1))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"heads": 3, "d_model": 64}, "heads .3. must divide d_model .64."),
        ({"context": 0}, "context must be an integer from 1"),
        ({"device": "tpu"}, "device must be one of"),
        ({"vocab_cap": 0}, "vocab_cap must be an integer from 1"),
        ({"batch_size": 4}, "has no parameter"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(DataleverError, match=message):
        TransformerLM.configure(**params)  # what a spec's parameters go through
    if "batch_size" not in params:  # the name Learner keeps for scenarios per batch
        with pytest.raises(DataleverError, match=message):
            TransformerLM(**params)


def test_devices():
    assert not TransformerLM(device="cpu").runs_on_gpu
    assert TransformerLM(device="cpu").key_variant() is None
    if not torch.cuda.is_available():
        with pytest.raises(DataleverError, match="no CUDA device"):
            TransformerLM(device="cuda").check(None)


def test_without_torch_the_fix_is_to_install_it(monkeypatch):
    monkeypatch.setattr(transformer, "_torch_installed", lambda: False)
    with pytest.raises(DataleverError, match="needs PyTorch") as e:
        TransformerLM(device="cpu").fit(cycles(3))
    assert "pip install" in (e.value.fix or "")


@pytest.mark.parametrize("cap", [None, 4])
def test_top_k_breaks_exact_ties_by_the_lower_code(cap):
    """Zero weights give every class the same probability: a kept code's is g times an
    <unk>-sharing code's, and the ranking is by code within each."""
    fitted = TransformerLM(**SMALL, vocab_cap=cap).fit(cycles(5))
    with torch.no_grad():
        for weight in fitted.net.parameters():
            weight.zero_()
    query = mixed()
    d = fitted.distribution(query)
    assert len(np.unique(d)) == (1 if cap is None else 2)
    for k in (1, 4, V + 1):
        np.testing.assert_array_equal(fitted.top_k(query, k), ranked(d)[:, :k])


def test_batched_fits_only_when_asked_or_on_cuda():
    plain = TransformerLM(**SMALL)
    assert plain.fast_path(cycles(3)) is None
    assert "batched" not in plain.params() and "batched" not in repr(plain)
    batched = TransformerLM(**SMALL, batched=True)
    assert batched.params()["batched"] is True
    assert batched.fast_path(cycles(3)).name == "batched-torch-cpu"
    assert batched.batch_size == TransformerLM.cpu_batch_size
    if torch.cuda.is_available():
        assert TransformerLM(device="cuda").fast_path(cycles(3)) is not None


@pytest.mark.parametrize("cap", [None, 4])
def test_batched_fits_equal_plain_fits(cap):
    """Scenarios that remove files, add files (more windows and steps than the base), keep
    the base, and remove everything train together as each does alone; with a vocabulary
    cap, each scenario's kept codes are its own."""
    base = cycles(12, seed=3)
    rng = np.random.default_rng(4)
    added = files([rng.integers(0, V, n) for n in (30, 6, 17)])
    nothing = np.array([], dtype=np.int64)
    deltas = [
        Delta(nothing),
        Delta(np.array([0, 2, 5, 7])),
        Delta(np.array([1]), added),
        Delta(np.arange(len(base))),
    ]
    learner = TransformerLM(**SMALL, epochs=2, vocab_cap=cap, batched=True)
    batched = list(learner.fast_path(base).fit_many(deltas))
    assert len(batched) == len(deltas)
    query = mixed()
    for delta, got in zip(deltas, batched, strict=True):
        want = TransformerLM(**SMALL, epochs=2, vocab_cap=cap).fit(delta.apply(base))
        np.testing.assert_array_equal(got.classes.code, want.classes.code)
        assert not got.net.training
        torch.testing.assert_close(
            torch.from_numpy(got.distribution(query)),
            torch.from_numpy(want.distribution(query)),
            rtol=1e-4,
            atol=1e-6,
        )
    if cap is not None:  # the scenarios' classes differ, and each keeps its own
        assert len({tuple(m.classes.code) for m in batched}) > 1
    assert list(learner.fast_path(base).fit_many([])) == []


def test_batched_fits_are_the_same_computation_in_float64():
    """In float64, where training amplifies no float32 rounding, batched fits over many
    steps (two blocks, three epochs, clipped gradients) match plain fits to the float32
    softmax of scoring: the batched computation is the plain one, not an approximation."""
    base = mixed(5)
    deltas = [Delta(np.array([4])), Delta(np.array([], dtype=np.int64), cycles(20))]
    params = dict(SMALL, layers=2, epochs=3, batch_windows=3, vocab_cap=6)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        learner = TransformerLM(**params, batched=True)
        batched = list(learner.fast_path(base).fit_many(deltas))
        plain = [TransformerLM(**params).fit(delta.apply(base)) for delta in deltas]
    finally:
        torch.set_default_dtype(default)
    for got, want in zip(batched, plain, strict=True):
        assert next(got.net.parameters()).dtype == torch.float64
        np.testing.assert_allclose(got.prob(mixed()), want.prob(mixed()), rtol=1e-6)
