"""Capability metrics and the ranked-list evaluation they are computed from."""

from datalever.metrics.catalog import Metric, group_value, parse_metric
from datalever.metrics.evaluation import (
    EVALUATION_VERSION,
    Evaluation,
    HeldOut,
    RatingsTask,
    TopNTask,
    evaluate_ratings,
    evaluate_topn,
)

__all__ = [
    "EVALUATION_VERSION",
    "RatingsTask",
    "TopNTask",
    "Evaluation",
    "HeldOut",
    "Metric",
    "evaluate_ratings",
    "evaluate_topn",
    "group_value",
    "parse_metric",
]
