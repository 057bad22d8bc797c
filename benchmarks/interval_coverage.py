"""How often datalever's intervals cover the truth, by simulation with known answers.

1. Bootstrap intervals of a mean (BCa and percentile), plain and expanded for small samples,
   over normal samples of size 5, 10 and 30.
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


def bootstrap_coverage(reps: int, n: int, method: str, expanded: bool) -> float:
    rng = np.random.default_rng(7)
    level = (lambda c, k: c) if not expanded else statistics.expanded_level
    hits = 0
    with mock.patch.object(statistics, "expanded_level", level):
        for rep in range(reps):
            sample = rng.normal(-0.02, 0.01, size=n)
            hits += statistics.bootstrap_ci(sample, 0.95, method, seed=rep).contains(-0.02)
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
    print(f"bootstrap 95 % intervals of a mean, {args.reps} normal samples each")
    print(" n   method       plain   expanded")
    for n in (5, 10, 30):
        for method in ("BCa", "percentile"):
            plain = bootstrap_coverage(args.reps, n, method, False)
            wide = bootstrap_coverage(args.reps, n, method, True)
            print(f"{n:>2}   {method:<10} {plain:7.3f}   {wide:8.3f}")
    print(f"\nask: bracket around the true threshold (0.3), {args.reps} searches")
    for noise in (0.003, 0.006, 0.012):
        share, width = ask_coverage(args.reps, noise)
        print(f"  noise sd {noise}: holds the truth {share:.3f}, mean width {width:.3f}")


if __name__ == "__main__":
    main()
