"""The one exception type users see: a problem and how to fix it, never a traceback."""

from __future__ import annotations


class DataleverError(Exception):
    """A problem the user can fix. The command line prints it as one paragraph and exits 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} Fix: {fix}")
