"""The consent registry: who reserved or allowed which works for which purposes, and when.

Every change is an append-only event, so a pipeline can ask how consent stood at any moment
and filter a dataset exactly as it was allowed then.
"""

from datalever.registry.purposes import PURPOSES, purpose_chain
from datalever.registry.registry import Decision, Registry, TokenInfo, default_registry_url
from datalever.registry.works import parse_work

__all__ = [
    "PURPOSES",
    "Decision",
    "Registry",
    "TokenInfo",
    "default_registry_url",
    "parse_work",
    "purpose_chain",
]
