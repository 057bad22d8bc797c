"""How long the consent registry takes to decide 10,000 works in one call (the pipeline's bulk
check), on SQLite and, given a URL, PostgreSQL.

    python benchmarks/registry_bulk.py [--url postgresql://USER@HOST/EMPTYDB] [--works 10000]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The registry the tests build at scale, so benchmark and test measure the same thing.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_bulk_registry = importlib.import_module("tests.test_registry_core")._bulk_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an empty database (default: a new SQLite file)")
    parser.add_argument("--works", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or str(Path(folder) / "registry.sqlite")
        reg, works = _bulk_registry(url, args.works)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reg.decide("big", works, "train-genai")
            times.append(time.perf_counter() - start)
        reg.close()
    backend = "postgresql" if args.url else "sqlite"
    print(
        f"{backend}: decide({args.works} works) median {statistics.median(times):.3f} s, "
        f"best {min(times):.3f} s over {args.repeats} calls"
    )


if __name__ == "__main__":
    main()
