"""``python -m datalever``: the command line."""

from datalever.cli import main

main()
