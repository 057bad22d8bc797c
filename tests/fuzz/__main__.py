"""Run every fuzz case: ``python -m tests.fuzz [--only TEXT]``; exit 1 when any case fails.

The cases of :mod:`tests.fuzz.cases` run in this process; those of :mod:`tests.fuzz.classify`
run in a child process under a memory limit (:func:`~tests.fuzz.harness.run_isolated`), as
some of them would otherwise allocate tens of gigabytes when datalever fails to refuse them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.cases import all_cases
from tests.fuzz.classify import classify_cases
from tests.fuzz.harness import make_template_store, run_case, run_isolated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases = [c for c in all_cases() if args.only in c.name]
    isolated = [i for i, c in enumerate(classify_cases()) if args.only in c.name]
    failures = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        template = make_template_store(Path(tmp) / "template.sqlite")
        for i, case in enumerate(cases):
            outcome = run_case(case, Path(tmp) / f"case{i}", template)
            if not outcome.passed:
                failures += 1
                print(f"FAIL {case.name}: {outcome.problem}", flush=True)
        if isolated:
            names = classify_cases()
            factory = "tests.fuzz.classify:classify_cases"
            root = Path(tmp) / "classify"
            root.mkdir()
            for i, (problem, _) in sorted(run_isolated(factory, isolated, root, template).items()):
                if problem is not None:
                    failures += 1
                    print(f"FAIL {names[i].name}: {problem}", flush=True)
    total = len(cases) + len(isolated)
    seconds = time.perf_counter() - started
    print(f"{total - failures} of {total} cases passed in {seconds:.0f} s.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
