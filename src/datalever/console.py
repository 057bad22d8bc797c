"""Where the command line writes, and how a problem the user can fix reaches them: one
paragraph on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer
from rich.console import Console
from rich.text import Text

from datalever.errors import DataleverError

# No console markup anywhere: user-supplied text (run ids, paths, names) is shown as given.
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)


def print_problem(text: str) -> None:
    err_console.print(Text.assemble(("Error: ", "bold red"), text), soft_wrap=True)


def exits_on_problems(command: Callable) -> Callable:
    """A command whose ``DataleverError`` prints one paragraph and exits 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataleverError as e:
            print_problem(str(e))
            raise typer.Exit(2) from None

    return wrapper
