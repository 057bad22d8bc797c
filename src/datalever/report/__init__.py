"""Reports: terminal tables and machine-readable exports of a run's summary."""

from datalever.report.terminal import render_curve, render_summary, summary_records

__all__ = ["render_curve", "render_summary", "summary_records"]
