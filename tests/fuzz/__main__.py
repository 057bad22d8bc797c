"""Run every fuzz case: ``python -m tests.fuzz [--only TEXT]``; exit 1 when any case fails.

The cases of :mod:`tests.fuzz.cases` run in this process; those of :mod:`tests.fuzz.classify`
and :mod:`tests.fuzz.code` run in a child process under a memory limit
(:func:`~tests.fuzz.harness.run_isolated`), as some of them would otherwise allocate tens of
gigabytes when datalever fails to refuse them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.cases import all_cases
from tests.fuzz.classify import classify_cases
from tests.fuzz.code import code_cases
from tests.fuzz.harness import make_template_store, run_case, run_isolated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases = [c for c in all_cases() if args.only in c.name]
    isolated = {
        "classify": (classify_cases, "tests.fuzz.classify:classify_cases"),
        "code": (code_cases, "tests.fuzz.code:code_cases"),
    }
    chosen = {
        family: [i for i, c in enumerate(make()) if args.only in c.name]
        for family, (make, _) in isolated.items()
    }
    failures = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        template = make_template_store(Path(tmp) / "template.sqlite")
        for i, case in enumerate(cases):
            outcome = run_case(case, Path(tmp) / f"case{i}", template)
            if not outcome.passed:
                failures += 1
                print(f"FAIL {case.name}: {outcome.problem}", flush=True)
        for family, (make, factory) in isolated.items():
            if not chosen[family]:
                continue
            names = make()
            root = Path(tmp) / family
            root.mkdir()
            done = run_isolated(factory, chosen[family], root, template)
            for i, (problem, _) in sorted(done.items()):
                if problem is not None:
                    failures += 1
                    print(f"FAIL {names[i].name}: {problem}", flush=True)
    total = len(cases) + sum(len(indices) for indices in chosen.values())
    seconds = time.perf_counter() - started
    print(f"{total - failures} of {total} cases passed in {seconds:.0f} s.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
