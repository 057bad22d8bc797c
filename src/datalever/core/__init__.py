"""The task-agnostic core: deltas over records, and the interfaces every task family fills.

Contributors, collectives, levers, the engine, the store, the analysis and the reports work
through these types only; what a record is (a rating, a labelled example) and how a model is
judged belong to a task family under :mod:`datalever.tasks`.
"""

from datalever.core.delta import Delta, Records

__all__ = ["Delta", "Records"]
