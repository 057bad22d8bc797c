"""Biased MF's torch backend: waves of commuting record steps are the sequential SGD, batched
torch fits equal separate ones, and the torch path agrees with the numba kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datalever.errors import DataleverError
from datalever.learners import make_learner, mf_torch
from datalever.learners.mf import BiasedMF, BiasedMFModel
from datalever.learners.mf_torch import fit_stacked, sgd_waves, torch_available
from tests.test_learners import reference_sgd
from tests.test_mf_batched import SETTINGS, all_pairs, problems

needs_torch = pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")


def cuda_seen() -> bool:
    if not torch_available():
        return False
    import torch

    return torch.cuda.is_available()


def torch_learner(seed: int, n_factors: int = 3) -> BiasedMF:
    return BiasedMF(
        n_factors=n_factors, n_epochs=4, lr=0.05, seed=seed, backend="torch", device="cpu"
    )


def test_waves_worked_example():
    # r0 (u0, i0) and r3 (u2, i2) share nothing earlier: wave 0. r1 shares user 0 with r0:
    # wave 1. r2 shares item 1 with r1: wave 2.
    positions, ptr = sgd_waves(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3, 3)
    assert positions.tolist() == [0, 3, 1, 2]
    assert ptr.tolist() == [0, 2, 3, 4]


def test_no_records_no_waves():
    positions, ptr = sgd_waves(np.zeros(0, int), np.zeros(0, int), 2, 2)
    assert positions.tolist() == [] and ptr.tolist() == [0]


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=60))
def test_waves_keep_every_conflicting_pair_in_order(pairs):
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    positions, ptr = sgd_waves(users, items, 6, 6)
    assert sorted(positions.tolist()) == list(range(len(pairs)))
    wave = np.empty(len(pairs), dtype=np.int64)
    for w in range(len(ptr) - 1):
        members = positions[ptr[w] : ptr[w + 1]]
        assert len(members) > 0
        assert np.all(np.diff(members) > 0)
        # a wave touches each user and each item at most once
        assert len(set(users[members])) == len(members) == len(set(items[members]))
        wave[members] = w
    for j in range(len(pairs)):
        for k in range(j + 1, len(pairs)):
            if users[j] == users[k] or items[j] == items[k]:
                assert wave[j] < wave[k]


@needs_torch
@SETTINGS
@given(problems(max_deltas=4), st.integers(1, 5))
def test_waves_in_float64_are_the_sequential_sgd(problem, n_factors):
    """Run in float64, the wave schedule gives each scenario what visiting its own records one
    by one gives, to 1e-12 (a step lost to two records of one user in a wave would show)."""
    base, ds, seed = problem
    rng = np.random.default_rng(seed)
    n, k = len(base), len(ds)
    active = np.array([rng.random(n) < 0.7 for _ in ds], dtype=bool).reshape(k, n)
    mu = rng.uniform(2, 4, k)
    pu0 = rng.normal(0, 0.1, (base.n_users, n_factors))
    qi0 = rng.normal(0, 0.1, (base.n_items, n_factors))
    fitted = list(
        fit_stacked(base.users, base.items, base.ratings, active, mu, pu0, qi0, 3, 0.05, 0.1, "cpu")
    )
    assert len(fitted) == k
    zeros_u, zeros_i = np.zeros(base.n_users), np.zeros(base.n_items)
    for s, got in enumerate(fitted):
        on = active[s]
        expected = reference_sgd(
            base.users[on], base.items[on], base.ratings[on], mu[s],
            zeros_u, zeros_i, pu0, qi0, 3, 0.05, 0.1,
        )  # fmt: skip
        for g, want in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, want, rtol=0, atol=1e-12)
        if on.any():  # it moved the parameters
            assert not np.allclose(got[2], pu0) or not np.allclose(got[3], qi0)


def assert_close_models(got: BiasedMFModel, expected: BiasedMFModel, atol: float) -> None:
    assert got.mu == expected.mu
    uu, ii = all_pairs(len(got.bu), got.n_items)
    np.testing.assert_allclose(got.predict(uu, ii), expected.predict(uu, ii), rtol=0, atol=atol)


@needs_torch
@SETTINGS
@given(problems(), st.sampled_from([1, 3, 17]))
def test_torch_batched_equals_separate_torch_fits(problem, n_factors):
    base, ds, seed = problem
    learner = torch_learner(seed, n_factors)
    fast = learner.fast_path(base)
    assert fast.name == "batched-sgd-torch-cpu"
    for delta, model in zip(ds, fast.fit_many(ds), strict=True):
        plain = learner.fit(delta.apply(base))
        assert_close_models(model, plain, atol=1e-7)
        for name in ("bu", "bi", "pu", "qi"):
            np.testing.assert_allclose(getattr(model, name), getattr(plain, name), atol=1e-7)


@needs_torch
@SETTINGS
@given(problems(max_deltas=3), st.sampled_from([1, 8, 40]))
def test_torch_agrees_with_the_numba_kernel(problem, n_factors):
    base, ds, seed = problem
    torch_models = torch_learner(seed, n_factors).fast_path(base).fit_many(ds)
    numba = BiasedMF(n_factors=n_factors, n_epochs=4, lr=0.05, seed=seed, backend="numba")
    for delta, model in zip(ds, torch_models, strict=True):
        assert_close_models(model, numba.fit(delta.apply(base)), atol=2e-5)


@needs_torch
def test_torch_agrees_with_the_numba_kernel_on_movielens(ml100k):
    """Surprise's defaults on MovieLens-100K, with 20 and 400 users striking: the two backends'
    predictions agree to float32 rounding (about 2e-6 measured)."""
    from datalever.learners.base import Delta

    train = ml100k.training_set()
    rng = np.random.default_rng(0)
    ds = [
        Delta(np.flatnonzero(np.isin(train.users, rng.choice(train.n_users, n, replace=False))))
        for n in (20, 400)
    ]
    kw = dict(n_epochs=5, seed=1)
    got = BiasedMF(backend="torch", device="cpu", **kw).fast_path(train).fit_many(ds)
    want = BiasedMF(backend="numba", **kw).fast_path(train).fit_many(ds)
    uu, ii = train.users[::7], train.items[::7]
    for g, w in zip(got, want, strict=True):
        diff = np.abs(g.predict(uu, ii) - w.predict(uu, ii))
        assert diff.max() < 2e-5


def test_unknown_backend_and_stray_device_are_refused():
    with pytest.raises(DataleverError, match="backend must be one of"):
        make_learner("biased_mf", {"backend": "gpu"})
    with pytest.raises(DataleverError, match='only with backend = "torch"'):
        make_learner("biased_mf", {"device": "cuda"})


@needs_torch
def test_bad_torch_devices_are_refused_before_anything_runs():
    with pytest.raises(DataleverError, match="cannot fit on the torch device 'gpu'"):
        BiasedMF(backend="torch", device="gpu").torch_device()
    with pytest.raises(DataleverError, match="CUDA device"):
        BiasedMF(backend="torch", device="cuda:99").batch_size  # noqa: B018


@pytest.mark.skipif(cuda_seen(), reason="a CUDA device is present")
@needs_torch
def test_torch_backend_without_a_gpu_says_so():
    with pytest.raises(DataleverError, match="sees 0 CUDA device"):
        BiasedMF(backend="torch").torch_device()
    cpu = BiasedMF(backend="torch", device="cpu:0")
    assert cpu.torch_device() == "cpu:0" and not cpu.runs_on_gpu
    assert cpu.batch_size == BiasedMF.cpu_batch_size and cpu.key_variant() == "torch-cpu"


def test_torch_backend_without_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(mf_torch, "torch_available", lambda: False)
    with pytest.raises(DataleverError, match="needs PyTorch"):
        BiasedMF(backend="torch", device="cpu").torch_device()


def test_numba_backend_never_uses_torch():
    learner = BiasedMF(backend="numba")
    assert learner.torch_device() is None and not learner.runs_on_gpu
    assert learner.batch_size == BiasedMF.cpu_batch_size and learner.key_variant() is None


@pytest.mark.parametrize("gpu", [True, False])
def test_auto_backend_takes_the_gpu_when_torch_sees_one(monkeypatch, gpu, ml100k):
    """``auto`` follows :func:`gpu_present`: the device, batch size, key and the engine's
    batches all change with it (no GPU is started: nothing is fitted)."""
    from datalever.engine.executor import _gpu_learners
    from datalever.engine.runner import _batches
    from datalever.scenarios import plan
    from datalever.spec import parse_spec
    from tests.conftest import SMALL_SPEC

    spec = parse_spec(SMALL_SPEC.replace('name = "item_mean"', 'name = "biased_mf"'))
    monkeypatch.setattr(mf_torch, "gpu_present", lambda: False)
    cpu_keys = {s.key for s in plan(spec, ml100k.checksum())}
    monkeypatch.setattr(mf_torch, "gpu_present", lambda: gpu)
    learner = BiasedMF()
    assert learner.torch_device() == ("cuda" if gpu else None)
    assert learner.runs_on_gpu is gpu
    assert learner.batch_size == (BiasedMF.gpu_batch_size if gpu else BiasedMF.cpu_batch_size)
    assert learner.key_variant() == ("torch-cuda" if gpu else None)
    assert _gpu_learners(spec) == ({0} if gpu else set())
    scenarios = plan(spec, ml100k.checksum())
    mf_keys = {s.key for s in scenarios if s.learner == "biased_mf"}
    # GPU results are keyed apart from CPU ones; the other learner's keys do not change
    assert mf_keys.isdisjoint(cpu_keys) is gpu
    assert {s.key for s in scenarios if s.learner != "biased_mf"} <= cpu_keys
    mf_batches = [b for b in _batches(spec, scenarios, jobs=2) if b[0] == 0]
    per_fold = len(scenarios) // 4  # 2 learners x 2 folds
    # a GPU learner's fold is one batch; on the CPU it is split so both workers get work
    assert max(len(b[2]) for b in mf_batches) == (per_fold if gpu else min(16, -(-per_fold // 2)))


@pytest.mark.skipif(not cuda_seen(), reason="no CUDA device")
def test_cuda_agrees_with_torch_on_the_cpu(ml100k):
    from datalever.learners.base import Delta

    train = ml100k.training_set()
    ds = [Delta(np.zeros(0, dtype=np.int64)), Delta(np.flatnonzero(train.users < 100))]
    kw = dict(n_epochs=5, seed=1, backend="torch")
    uu, ii = train.users[::7], train.items[::7]
    for deltas in (ds[:1], ds):  # K = 1 and K = 2
        on_gpu = BiasedMF(device="cuda", **kw).fast_path(train).fit_many(deltas)
        on_cpu = BiasedMF(device="cpu", **kw).fast_path(train).fit_many(deltas)
        for g, c in zip(on_gpu, on_cpu, strict=True):
            assert np.abs(g.predict(uu, ii) - c.predict(uu, ii)).max() < 2e-5


@needs_torch
def test_engine_runs_the_torch_backend_and_records_its_path(ml100k, tmp_path):
    """A spec asking for the torch backend runs through the engine; its results name the path
    and agree with the numba backend's to float32 rounding."""
    from datalever.engine.runner import run_spec
    from datalever.spec import parse_spec
    from datalever.store import ResultsStore
    from tests.conftest import SMALL_SPEC

    def run(backend: str) -> pd.DataFrame:
        text = SMALL_SPEC.replace(
            '[[learners]]\nname = "item_mean"\n\n[[learners]]\nname = "popularity"',
            f'[[learners]]\nname = "biased_mf"\nn_epochs = 3\nn_factors = 10\n{backend}',
        ).replace("run_folds = 2", "run_folds = 1")
        store = ResultsStore(tmp_path / "r.sqlite")
        return store.results(run_spec(parse_spec(text), store, data=ml100k).run_id)

    torch_run = run('backend = "torch"\ndevice = "cpu"')
    numba_run = run('backend = "numba"')
    assert set(torch_run["path"]) == {"batched-sgd-torch-cpu"}
    assert set(numba_run["path"]) == {"batched-sgd"}
    cols = ["collective", "sample", "eval_group", "metric"]
    a = torch_run.sort_values(cols).reset_index(drop=True)
    b = numba_run.sort_values(cols).reset_index(drop=True)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a["value"], b["value"], rtol=0, atol=1e-5)
