"""The engine: runs scenarios through learners and writes each result as it finishes."""

from datalever.engine.runner import RunReport, run_spec

__all__ = ["RunReport", "run_spec"]
