"""Fetching a work's signals over HTTP, kept apart so every parser stays offline.

``fetch_sources`` gets the work itself (its headers and body) and the three site-wide files
at its origin: ``/robots.txt``, ``/.well-known/tdmrep.json`` and ``/ai.txt``. How each
outcome reads:

* a site-wide file that answers 2xx is parsed; if it is malformed (binary, broken JSON,
  wrong types), the parsers reserve, with the reason;
* a site-wide file that is missing (4xx), or that cannot be fetched (5xx, timeout, refused
  connection, too many redirects), is no signal at all, except robots.txt: RFC 9309
  §2.3.1.4 has a crawler treat a robots.txt unreachable through a server or network error
  as a full disallow, so that reserves (``SignalSources.robots_unreachable``);
* the work itself must be fetched: a network error there is a ``DataleverError``. Its
  headers count whatever its status.

Bodies are read up to a size limit; a site-wide file cut at the limit is parsed as cut
(robots.txt as RFC 9309 allows; a cut JSON file no longer parses, so it reserves).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from datalever.errors import DataleverError
from datalever.registry.signals.aitxt import AITXT_PATH
from datalever.registry.signals.combine import SignalSources
from datalever.registry.signals.statements import MAX_TEXT_BYTES
from datalever.registry.signals.tdmrep import WELL_KNOWN_PATH

MAX_BODY_BYTES = 32 * 1024 * 1024
ROBOTS_PATH = "/robots.txt"


def _get(
    client: httpx.Client, url: str, limit: int, timeout: float
) -> tuple[httpx.Response, bytes]:
    """The response to a GET of ``url`` and its body, read up to ``limit`` bytes, all
    within ``timeout`` seconds (httpx's own timeout bounds each read, not the whole)."""
    deadline = time.monotonic() + timeout
    with client.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"{url} took over {timeout} s", request=response.request)
    return response, b"".join(chunks)[:limit]


def _site_file(client: httpx.Client, url: str, timeout: float) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None) on 2xx; (None, None) when missing; (None, why) when it
    could not be fetched because of a server or network error."""
    try:
        response, data = _get(client, url, MAX_TEXT_BYTES, timeout)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}"
    if response.is_success:
        return data, None
    if response.status_code >= 500:
        return None, f"HTTP {response.status_code}"
    return None, None


def fetch_sources(url: str, client: httpx.Client, *, timeout: float = 10.0) -> SignalSources:
    """The signal inputs of the work at ``url``, fetched with ``client``, each request
    limited to ``timeout`` seconds."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataleverError(
            f"Cannot fetch signals for {url[:200]!r}: it is not an http(s) URL.",
            "give the work's full address, such as https://example.org/page.html.",
        )
    try:
        response, body = _get(client, url, MAX_BODY_BYTES, timeout)
    except httpx.HTTPError as e:
        raise DataleverError(
            f"Cannot fetch {url[:200]!r}: {type(e).__name__}: {str(e)[:120]}.",
            "check the address and the network, or pass the work's headers and body "
            "in SignalSources yourself.",
        ) from None

    def at(path: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    robots_txt, robots_error = _site_file(client, at(ROBOTS_PATH), timeout)
    tdmrep_json, _ = _site_file(client, at(WELL_KNOWN_PATH), timeout)
    ai_txt, _ = _site_file(client, at(AITXT_PATH), timeout)
    return SignalSources(
        url=url,
        robots_txt=robots_txt,
        headers=tuple(response.headers.multi_items()),
        body=body,
        tdmrep_json=tdmrep_json,
        ai_txt=ai_txt,
        robots_unreachable=robots_error,
    )
