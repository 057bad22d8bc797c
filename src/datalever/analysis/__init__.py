"""Analysis: turn stored scenario results into leverage summaries."""

from datalever.analysis.summary import summarise

__all__ = ["summarise"]
