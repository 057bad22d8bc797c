"""HTTP response headers: ``X-Robots-Tag`` directives and the AIPREF ``Content-Usage`` field.

Every instance of each header is read, names compared case-insensitively, and each
statement names its instance (``header 2`` is the second ``X-Robots-Tag``).

``X-Robots-Tag`` directives map to purposes like this (``noai`` and ``noimageai`` are the
directives DeviantArt introduced in 2022 and others adopted; ``noml`` is a variant some
sites send; none is standardised):

* ``noai`` and ``noml``: no AI or machine-learning use → ``train-ai`` reserved;
* ``noimageai``: no AI use of images → ``train-ai`` reserved for image works only; a work
  is an image when its ``Content-Type`` is ``image/*`` or the caller says so, and when
  neither tells, it is taken to be one (a reservation is never dropped for lack of a
  type);
* ``noindex`` and ``none``: keep out of search indexes → ``search`` reserved.

Other directives (``nofollow``, ``max-snippet: 20`` …) say nothing about these purposes and
are skipped. A directive may be scoped to one crawler, ``X-Robots-Tag: otherbot: noai``;
it then applies only when it names the pipeline's crawler, as a robots.txt group would.

``Content-Usage`` carries the vocabulary's dictionary (see ``usage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from datalever.registry.signals.statements import Statement, quote
from datalever.registry.signals.usage import usage_statements

Headers = Iterable[tuple[str, str]] | Mapping[str, str]
"""Response headers as (name, value) pairs, repeats kept; a mapping works where no name
repeats."""

X_ROBOTS = "x-robots-tag"
CONTENT_USAGE = "content-usage"

_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
_MAPPING: dict[str, str] = {"noai": "train-ai", "noml": "train-ai", "noimageai": "train-ai"}
_SEARCH = {"noindex", "none"}


def header_values(headers: Headers, name: str) -> list[str]:
    """Every value of the header ``name``, in order, matching names case-insensitively."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    out = []
    for key, value in pairs:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if str(key).strip().lower() == wanted:
            out.append(str(value))
    return out


def is_image_response(headers: Headers) -> bool | None:
    """Whether the response's ``Content-Type`` is an image; None when it has none."""
    types = header_values(headers, "content-type")
    if not types:
        return None
    return types[-1].strip().lower().startswith("image/")


def _x_robots(value: str, number: int, agent: str, is_image: bool) -> list[Statement]:
    out: list[Statement] = []
    scope: str | None = None
    for item in value.split(","):
        item = item.strip()
        head, colon, tail = item.partition(":")
        directive = item
        if colon and head.strip().lower() not in _VALUED and " " not in head.strip():
            scope, directive = head.strip().lower(), tail.strip()
            if ":" in directive and directive.partition(":")[0].strip().lower() not in _VALUED:
                continue  # "a: b: c" is not a directive
        if scope is not None and scope != agent.lower():
            continue
        word = directive.split(":")[0].strip().lower()
        shown = f"{scope}: {directive}" if scope else directive
        rule = f"{X_ROBOTS}: {quote(shown)} (header {number})"
        if word in _MAPPING and (word != "noimageai" or is_image):
            out.append(Statement(X_ROBOTS, _MAPPING[word], "reserved", rule))
        elif word in _SEARCH:
            out.append(Statement(X_ROBOTS, "search", "reserved", rule))
    return out


def header_statements(
    headers: Headers, *, agent: str, is_image: bool | None = None
) -> tuple[Statement, ...]:
    """What the ``X-Robots-Tag`` and ``Content-Usage`` headers of a response say for a
    pipeline whose crawler is ``agent``. ``is_image`` overrides the Content-Type."""
    if is_image is None:
        is_image = is_image_response(headers)
    image = True if is_image is None else is_image
    out: list[Statement] = []
    for number, value in enumerate(header_values(headers, X_ROBOTS), start=1):
        out.extend(_x_robots(value, number, agent, image))
    for number, value in enumerate(header_values(headers, CONTENT_USAGE), start=1):
        out.extend(usage_statements(value, CONTENT_USAGE, f"header {number}"))
    return tuple(out)
