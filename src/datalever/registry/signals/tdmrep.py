"""TDMRep, the W3C community group's TDM Reservation Protocol: ``tdm-reservation`` says
whether text and data mining rights are reserved (``1``) or not (``0``), and ``tdm-policy``
where a licence for them can be had.

Three places carry it, all read here:

* the ``tdm-reservation`` and ``tdm-policy`` HTTP response headers;
* ``/.well-known/tdmrep.json``: an array of ``{"location", "tdm-reservation",
  "tdm-policy"}`` objects whose ``location`` is a path pattern (robots.txt style, see
  ``patterns``); the first entry whose location matches the work's path answers;
* ``<meta name="tdm-reservation" content="1">`` (and ``tdm-policy``) in an HTML page.

A reservation covers text and data mining as a whole, ``tdm``, so every purpose. When the
places disagree, a reservation wins: a ``0`` in one place does not undo a ``1`` in another.
A reservation with a policy is still a reservation (the policy is a licence offer, not a
grant); its rule names the policy. A value other than 0 or 1, and a tdmrep.json that is not
an array of such objects, reserve.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from datalever.registry.signals.headers import Headers, header_values
from datalever.registry.signals.patterns import matches, path_of
from datalever.registry.signals.statements import Statement, as_text, malformed, quote

HEADER = "tdm-reservation"
WELL_KNOWN = "tdmrep.json"
META = "html meta"
WELL_KNOWN_PATH = "/.well-known/tdmrep.json"
MAX_HTML_BYTES = 4 * 1024 * 1024


def _reservation(value: str, signal: str, rule: str, policy: object) -> Statement:
    suffix = f", tdm-policy {quote(policy)}" if isinstance(policy, str) and policy else ""
    if value == "1":
        return Statement(signal, "tdm", "reserved", rule + suffix)
    if value == "0":
        return Statement(signal, "tdm", "allowed", rule)
    return Statement(signal, "tdm", "reserved", rule + ", not 0 or 1")


def tdmrep_header_statements(headers: Headers) -> tuple[Statement, ...]:
    """What the ``tdm-reservation`` / ``tdm-policy`` response headers say."""
    policies = header_values(headers, "tdm-policy")
    policy = policies[0].strip() if policies else None
    out = []
    for number, value in enumerate(header_values(headers, HEADER), start=1):
        value = value.strip()
        rule = f"{HEADER}: {quote(value)} (header {number})"
        out.append(_reservation(value, HEADER, rule, policy))
    return tuple(out)


def well_known_statements(data: str | bytes, url: str) -> tuple[Statement, ...]:
    """What a site's ``/.well-known/tdmrep.json`` says about the work at ``url``."""
    text, bad = as_text(data, WELL_KNOWN)
    if bad is not None:
        return (bad,)
    assert text is not None
    try:
        rules = json.loads(text)
    except (ValueError, RecursionError) as e:
        return (malformed(WELL_KNOWN, f"not JSON: {str(e)[:60]}"),)
    if not isinstance(rules, list):
        return (malformed(WELL_KNOWN, f"a JSON {type(rules).__name__}, not an array"),)
    for index, entry in enumerate(rules):
        if not isinstance(entry, dict):
            return (malformed(WELL_KNOWN, f"entry {index} is not an object"),)
        location = entry.get("location")
        if not isinstance(location, str) or not location:
            return (malformed(WELL_KNOWN, f"entry {index} has no location string"),)
        policy = entry.get("tdm-policy")
        if policy is not None and not isinstance(policy, str):
            return (malformed(WELL_KNOWN, f"entry {index} has a tdm-policy that is no URL"),)
    path = path_of(url)
    for entry in rules:
        if matches(entry["location"], path):
            value = entry.get("tdm-reservation")
            shown = json.dumps(value)[:20]
            rule = f"{WELL_KNOWN}: location {quote(entry['location'])} tdm-reservation {shown}"
            # JSON integers only: true, 1.0 and "1" are other types, so unknown values
            number = str(value) if type(value) is int else shown
            return (_reservation(number, WELL_KNOWN, rule, entry.get("tdm-policy")),)
    return ()


class _MetaReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (name, content)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        name = values.get("name", "").strip().lower()
        if name in ("tdm-reservation", "tdm-policy"):
            self.found.append((name, values.get("content", "").strip()))

    handle_startendtag = handle_starttag


def html_statements(data: str | bytes) -> tuple[Statement, ...]:
    """What the ``tdm-reservation`` meta tags of an HTML page say."""
    if isinstance(data, bytes):
        data = data[:MAX_HTML_BYTES].decode("utf-8", "replace")
    reader = _MetaReader()
    try:
        reader.feed(data[:MAX_HTML_BYTES])
        reader.close()
    except Exception as e:  # noqa: BLE001  (html.parser is lenient; this is a last guard)
        return (malformed(META, f"HTML parser failed: {type(e).__name__}"),)
    policy = next((c for n, c in reader.found if n == "tdm-policy"), None)
    out = []
    number = 0
    for name, content in reader.found:
        if name != "tdm-reservation":
            continue
        number += 1
        rule = f'{META}: <meta name="tdm-reservation" content={quote(content)}> (tag {number})'
        out.append(_reservation(content, META, rule, policy))
    return tuple(out)
