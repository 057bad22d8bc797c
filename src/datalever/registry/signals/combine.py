"""One decision from every signal a work carries, read in a fixed order.

The order runs from the most general signal to the one closest to the work, and a later
signal that says anything about the purpose overrides the earlier ones:

1. robots.txt (``robots``), 2. the ``X-Robots-Tag`` and ``Content-Usage`` headers
(``headers``), 3. TDMRep headers, tdmrep.json and HTML meta (``tdmrep``), 4. ai.txt
(``aitxt``), 5. C2PA/CAWG assertions (``c2pa``), 6. XMP ``plus:DataMining`` (``xmp``).

Within one signal, ``statements.resolve`` answers: an unreadable input reserves, then the
statement about the most specific purpose in the purpose chain wins, then a reservation
wins a tie. A work no signal speaks about is allowed, with the rule ``no signal``: these
signals are opt-outs, and the registry's own policy decides what silence means.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from datalever.errors import DataleverError
from datalever.registry.purposes import check_purpose
from datalever.registry.signals import aitxt, c2pa, headers, robots, tdmrep, xmp
from datalever.registry.signals.statements import Outcome, Statement, resolve

ORDER: tuple[str, ...] = ("robots.txt", "headers", "tdmrep", "ai.txt", "c2pa", "xmp")
"""The signals in reading order; later ones override earlier ones."""


@dataclass(frozen=True)
class SignalSources:
    """The raw inputs for one work, already fetched: nothing here touches the network.

    ``url`` is the work's address (needed for the site-wide files, whose rules match its
    path); ``path`` a local copy of it. ``robots_txt``, ``tdmrep_json`` and ``ai_txt`` are
    the site's files as fetched, None when the site has none. ``headers`` are the work's
    response headers, repeats kept; ``body`` its content (an HTML page, or the file's
    bytes, which are searched for C2PA and XMP like a local file). ``robots_unreachable``
    says why robots.txt could not be fetched when a server or network error stopped it,
    which RFC 9309 reads as a full disallow. ``is_image`` overrides the guess from the
    Content-Type and the file name.
    """

    url: str | None = None
    robots_txt: str | bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | bytes | None = None
    tdmrep_json: str | bytes | None = None
    ai_txt: str | bytes | None = None
    path: Path | None = None
    robots_unreachable: str | None = None
    is_image: bool | None = None

    def __post_init__(self) -> None:
        pairs: Iterable = self.headers
        if isinstance(pairs, Mapping):
            pairs = pairs.items()
        object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in pairs))
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class SignalDecision:
    """Whether the signals allow ``purpose``, which signal and rule decided, and what each
    signal that spoke said (``reasons``, in reading order, the decider last)."""

    purpose: str
    outcome: Outcome
    signal: str
    rule: str
    reasons: tuple[Statement, ...] = field(default=())


def _image(sources: SignalSources) -> bool | None:
    if sources.is_image is not None:
        return sources.is_image
    found = headers.is_image_response(sources.headers)
    if found is not None:
        return found
    for name in (sources.path.name if sources.path else None, sources.url):
        if name:
            guessed = mimetypes.guess_type(name.split("?")[0])[0]
            if guessed:
                return guessed.startswith("image/")
    return None


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataleverError(
            f"The file {str(path)[:200]!r} does not exist.", "give the path of the work."
        ) from None
    except OSError as e:
        raise DataleverError(
            f"Cannot read {str(path)[:200]!r}: {e.strerror or e}.",
            "give a readable file.",
        ) from None


def _url(sources: SignalSources) -> str:
    if sources.url is None:
        raise DataleverError(
            "Site-wide signals (robots.txt, tdmrep.json, ai.txt) were given without the "
            "work's URL, so their rules cannot be matched.",
            "set SignalSources.url to the work's address.",
        )
    return sources.url


def gather(
    sources: SignalSources,
    *,
    agent: str = robots.DEFAULT_AGENT,
    ai_crawlers: tuple[str, ...] = robots.AI_TRAINING_CRAWLERS,
) -> dict[str, tuple[Statement, ...]]:
    """Every statement of every signal, by signal, in reading order."""
    found: dict[str, tuple[Statement, ...]] = dict.fromkeys(ORDER, ())
    if sources.robots_unreachable is not None:
        rule = (
            f"robots.txt: unreachable ({sources.robots_unreachable[:80]}), which RFC 9309 "
            "§2.3.1.4 reads as a full disallow"
        )
        found["robots.txt"] = (Statement("robots.txt", "tdm", "reserved", rule),)
    elif sources.robots_txt is not None:
        found["robots.txt"] = robots.robots_statements(
            sources.robots_txt, _url(sources), agent=agent, ai_crawlers=ai_crawlers
        )
    found["headers"] = headers.header_statements(
        sources.headers, agent=agent, is_image=_image(sources)
    )
    rep = list(tdmrep.tdmrep_header_statements(sources.headers))
    if sources.tdmrep_json is not None:
        rep.extend(tdmrep.well_known_statements(sources.tdmrep_json, _url(sources)))
    body = sources.body
    if body is not None and _mentions(body, "tdm-reservation"):
        rep.extend(tdmrep.html_statements(body))
    found["tdmrep"] = tuple(rep)
    if sources.ai_txt is not None:
        found["ai.txt"] = aitxt.aitxt_statements(sources.ai_txt, _url(sources), agent=agent)
    media: list[tuple[bytes, str | None]] = []
    content_type = headers.header_values(sources.headers, "content-type")
    if isinstance(body, bytes):
        media.append((body, content_type[-1].split(";")[0].strip() if content_type else None))
    provenance: list[Statement] = []
    embedded: list[Statement] = []
    for data, media_type in media:
        provenance.extend(c2pa.embedded_statements(data, media_type))
        embedded.extend(xmp.xmp_statements(data))
    if sources.path is not None:
        data = _file_bytes(sources.path)
        provenance.extend(c2pa.c2pa_file_statements(sources.path, data))
        embedded.extend(xmp.xmp_file_statements(sources.path, data))
    found["c2pa"] = tuple(provenance)
    found["xmp"] = tuple(embedded)
    return found


def _mentions(body: str | bytes, word: str) -> bool:
    if isinstance(body, bytes):
        return word.encode() in body[: tdmrep.MAX_HTML_BYTES].lower()
    return word in body[: tdmrep.MAX_HTML_BYTES].lower()


def read_signals(
    sources: SignalSources,
    purpose: str,
    *,
    agent: str = robots.DEFAULT_AGENT,
    ai_crawlers: tuple[str, ...] = robots.AI_TRAINING_CRAWLERS,
) -> SignalDecision:
    """Whether the work in ``sources`` may be used for ``purpose`` (an AIPREF category),
    by a pipeline whose crawler calls itself ``agent``.

    Malformed inputs reserve, with a reason; an unknown purpose, a missing local file or
    site-wide files without a URL are the caller's to fix (``DataleverError``)."""
    check_purpose(purpose)
    reasons: list[Statement] = []
    for statements in gather(sources, agent=agent, ai_crawlers=ai_crawlers).values():
        answer = resolve(statements, purpose)
        if answer is not None:
            reasons.append(answer)
    if not reasons:
        return SignalDecision(purpose, "allowed", "none", "no signal")
    last = reasons[-1]
    return SignalDecision(purpose, last.outcome, last.signal, last.rule, tuple(reasons))
