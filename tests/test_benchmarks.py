"""The benchmark scripts still import and parse their options (they are run by hand, so a
renamed function would otherwise go unnoticed). LensKit's lives in its own environment."""

from __future__ import annotations

import subprocess
import sys
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
