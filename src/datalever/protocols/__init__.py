"""Split protocols: how records are divided into training and held-out sets, fold by fold."""

from datalever.protocols.split import (
    DataStrikesProtocol,
    Fold,
    HoldoutProtocol,
    LeaveOneOutProtocol,
    Protocol,
    TemporalProtocol,
    cutoff_seconds,
)

__all__ = [
    "DataStrikesProtocol",
    "Fold",
    "HoldoutProtocol",
    "LeaveOneOutProtocol",
    "Protocol",
    "TemporalProtocol",
    "cutoff_seconds",
]
