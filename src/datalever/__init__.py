"""datalever: measure how much a collective of data contributors can boost or harm a model."""

__version__ = "0.1.0"
