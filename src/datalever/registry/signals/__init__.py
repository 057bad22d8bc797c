"""Machine-readable consent signals a training pipeline reads before it uses a web page or
a file: robots.txt, ``X-Robots-Tag`` and ``Content-Usage`` headers, TDMRep, ai.txt, C2PA
and CAWG training-and-data-mining assertions, and IPTC ``plus:DataMining`` in XMP.

Each parser takes raw text or bytes and never fetches; ``fetch_sources`` does the fetching,
``read_signals`` the deciding. Inputs that cannot be read reserve the work, with a reason:
a creator's opt-out must not be lost to a syntax error.

    >>> sources = SignalSources(url="https://example.org/a.jpg",
    ...                         headers=(("X-Robots-Tag", "noai"),))
    >>> read_signals(sources, "train-genai").rule
    'x-robots-tag: "noai" (header 1)'
"""

from datalever.registry.signals.aitxt import aitxt_statements
from datalever.registry.signals.c2pa import (
    c2pa_file_statements,
    embedded_statements,
    manifest_statements,
)
from datalever.registry.signals.combine import (
    ORDER,
    SignalDecision,
    SignalSources,
    gather,
    read_signals,
)
from datalever.registry.signals.fetch import fetch_sources
from datalever.registry.signals.headers import header_statements
from datalever.registry.signals.robots import (
    AI_TRAINING_CRAWLERS,
    DEFAULT_AGENT,
    robots_statements,
)
from datalever.registry.signals.statements import Outcome, Statement, resolve
from datalever.registry.signals.tdmrep import (
    html_statements,
    tdmrep_header_statements,
    well_known_statements,
)
from datalever.registry.signals.xmp import xmp_file_statements, xmp_statements

__all__ = [
    "AI_TRAINING_CRAWLERS",
    "DEFAULT_AGENT",
    "ORDER",
    "Outcome",
    "SignalDecision",
    "SignalSources",
    "Statement",
    "aitxt_statements",
    "c2pa_file_statements",
    "embedded_statements",
    "fetch_sources",
    "gather",
    "header_statements",
    "html_statements",
    "manifest_statements",
    "read_signals",
    "resolve",
    "robots_statements",
    "tdmrep_header_statements",
    "well_known_statements",
    "xmp_file_statements",
    "xmp_statements",
]
