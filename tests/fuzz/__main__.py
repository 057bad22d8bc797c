"""Run every fuzz case: ``python -m tests.fuzz [--only TEXT]``; exit 1 when any case fails."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.cases import all_cases
from tests.fuzz.harness import make_template_store, run_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases = [c for c in all_cases() if args.only in c.name]
    failures = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        template = make_template_store(Path(tmp) / "template.sqlite")
        for i, case in enumerate(cases):
            outcome = run_case(case, Path(tmp) / f"case{i}", template)
            if not outcome.passed:
                failures.append(outcome)
                print(f"FAIL {case.name}: {outcome.problem}", flush=True)
    seconds = time.perf_counter() - started
    print(f"{len(cases) - len(failures)} of {len(cases)} cases passed in {seconds:.0f} s.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
