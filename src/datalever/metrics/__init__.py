"""Capability metrics and the ranked-list evaluation they are computed from."""

from datalever.metrics.catalog import Metric, group_value, parse_metric
from datalever.metrics.evaluation import Evaluation, HeldOut, evaluate_ratings, evaluate_topn

__all__ = [
    "Evaluation",
    "HeldOut",
    "Metric",
    "evaluate_ratings",
    "evaluate_topn",
    "group_value",
    "parse_metric",
]
