"""The benchmark scripts still import and parse their options (they are run by hand, so a
renamed function would otherwise go unnoticed). LensKit's lives in its own environment."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "lenskit_strikes.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts(script):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_mf_sweep_leaves_out_sizes_that_strike_nobody(ml100k):
    # The engine reuses the no-action model for a strike that rounds to no user; a peer would
    # fit it. The sweep leaves such sizes out on both sides, decided as the engine draws.
    from datalever.collectives import Collective, draw

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import mf_sweep
    finally:
        sys.path.remove(str(BENCHMARKS))
    kept, nobody = mf_sweep.sizes_reaching_someone(ml100k.n_contributors)
    assert nobody == [0.0001, 0.0005] and kept == mf_sweep.PAPER_SIZES[2:]
    for size in kept + nobody:
        drawn = draw(Collective("random", size=size), ml100k, 0, 0).participants
        assert (len(drawn) > 0) == (size in kept)


def _burn(seconds: float) -> float:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds


def test_benchmark_cpu_seconds_count_workers_started_from_a_fork_server():
    # Per-core figures charge datalever for its worker processes, which the engine starts
    # from a fork server: grandchildren that getrusage does not count while the parent lives.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from mf_sweep import cpu_seconds
    finally:
        sys.path.remove(str(BENCHMARKS))
    context = multiprocessing.get_context("forkserver")
    before = cpu_seconds()
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        pool.submit(_burn, 0.5).result()
    assert cpu_seconds() - before >= 0.45


def test_classify_sweep_runs_in_tiny_mode_and_agrees_with_scikit_learn():
    # Every learner on digits and a small synthetic set, one draw per size: the engine and
    # scikit-learn run the same scenarios, and the script fails unless they agree.
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "classify_sweep.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    agreed = [line.split()[:2] for line in done.stdout.splitlines() if line.endswith("  ok")]
    learners = ("multinomial_nb", "gaussian_nb", "ridge", "lda", "logistic")
    assert agreed == [[d, n] for d in ("digits", "synthetic-1000") for n in learners]
    assert done.stdout.count("sufficient-statistics") == 8


def test_code_sweep_runs_in_tiny_mode_and_fast_equals_plain():
    # Six small standard-library packages, one draw per size, one run: the engine's fast path
    # and plain refits store equal values, and NLTK's Kneser–Ney stays within the sanity bound.
    pytest.importorskip("nltk")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "code_sweep.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line.split()[:2] for line in done.stdout.splitlines() if line.endswith("  ok")]
    assert checks == [["tiny", "fast"], ["tiny", "datalever's"], ["tiny", "NLTK"]]
    assert "FAILED" not in done.stdout
    assert done.stdout.count("sufficient-statistics") == 1
