"""How often datalever's intervals cover the truth, by simulation with known answers.

1. Intervals of a mean over normal samples of size 3, 5, 10 and 30: the Student-t interval,
   the bootstrap (BCa and percentile, plain and expanded for small samples), and the interval
   the summary reports (``mean_ci``: t below ``BOOTSTRAP_MIN_SAMPLES`` samples, expanded BCa
   from there). Skewed (lognormal) samples too, where the t-interval is weakest.
2. The bracket ``ask`` reports around the smallest collective reaching a delta, for a synthetic
   learner whose change grows linearly with collective size, plus noise.

    python benchmarks/interval_coverage.py --reps 1000
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np

from datalever.analysis import statistics
from datalever.analysis.ask import AdaptiveSearch

SIZES = (3, 5, 10, 30)


def draw(rng: np.random.Generator, n: int, shape: str) -> tuple[np.ndarray, float]:
    """A sample and its true mean."""
    if shape == "normal":
        return rng.normal(-0.02, 0.01, size=n), -0.02
    return rng.lognormal(0.0, 1.0, size=n), float(np.exp(0.5))


def coverage(reps: int, n: int, interval: str, shape: str = "normal") -> float:
    """Share of ``reps`` samples whose 95 % interval holds the true mean. ``interval``: ``t``,
    ``BCa``/``percentile`` (expanded), ``BCa plain``/``percentile plain``, or ``reported``."""
    rng = np.random.default_rng([7, n])
    method, _, plain = interval.partition(" ")
    level = (lambda c, k: c) if plain else statistics.expanded_level
    hits = 0
    with mock.patch.object(statistics, "expanded_level", level):
        for rep in range(reps):
            sample, truth = draw(rng, n, shape)
            if method == "t":
                ci = statistics.t_interval(sample, 0.95)
            elif method == "reported":
                ci = statistics.mean_ci(sample, 0.95, seed=rep)[0]
            else:
                ci = statistics.bootstrap_ci(sample, 0.95, method, seed=rep)
            hits += ci.contains(truth)
    return hits / reps


def ask_coverage(reps: int, noise: float) -> tuple[float, float]:
    """Share of searches whose bracket holds the true threshold (0.3), and mean bracket width."""
    found, widths = 0, []
    for rep in range(reps):

        def evaluate(size: float, n: int, rep: int = rep) -> np.ndarray:
            rng = np.random.default_rng([rep, int(round(size * 1e6))])
            return 0.1 * size + rng.normal(0, noise, size=n)

        result = AdaptiveSearch(evaluate, 0.03, 0.95, tolerance=0.02).run()
        found += result.answer == "yes" and result.low <= 0.3 <= result.high
        widths.append(result.high - result.low)
    return found / reps, float(np.mean(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args()
    columns = ("t", "BCa", "BCa plain", "percentile", "percentile plain", "reported")
    for shape in ("normal", "lognormal"):
        print(f"95 % intervals of a mean, {args.reps} {shape} samples each")
        print(" n   " + "  ".join(f"{c:>16}" for c in columns) + "   reported uses")
        for n in SIZES:
            cells = "  ".join(f"{coverage(args.reps, n, c, shape):16.3f}" for c in columns)
            print(f"{n:>2}   {cells}   {statistics.ci_method(n)}")
        print()
    print(f"reported: t below {statistics.BOOTSTRAP_MIN_SAMPLES} samples, expanded BCa from there")
    print(f"\nask: bracket around the true threshold (0.3), {args.reps} searches")
    for noise in (0.003, 0.006, 0.012):
        share, width = ask_coverage(args.reps, noise)
        print(f"  noise sd {noise}: holds the truth {share:.3f}, mean width {width:.3f}")


if __name__ == "__main__":
    main()
