"""Datasets as contributions: every record carries the id of the contributor who made it."""

from datalever.data.contributions import Contributions, TrainingSet

__all__ = ["Contributions", "TrainingSet"]
