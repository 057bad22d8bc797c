"""The AIPREF usage-preference dictionary: ``train-ai=n, search=y``.

draft-ietf-aipref-vocab writes preferences as a Structured Fields dictionary (RFC 9651)
whose keys are the vocabulary's categories and whose values are the tokens ``y`` (allowed)
and ``n`` (not allowed); parameters are ignored, and so are keys outside the vocabulary,
as the draft asks. The same text is the value of the ``Content-Usage`` HTTP header and of
the ``Content-Usage`` robots.txt rule (draft-ietf-aipref-attach), so both read it here.

A category given any other value (``train-ai=maybe``, a bare ``train-ai``) reserves it; a
dictionary that does not parse reserves everything.
"""

from __future__ import annotations

import re

from datalever.registry.purposes import PARENT
from datalever.registry.signals.statements import Statement, malformed

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*\Z")
MAX_FIELD = 8192


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside double-quoted strings."""
    parts, current, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted:
        raise ValueError("an unterminated string")
    parts.append("".join(current))
    return parts


def parse_dictionary(text: str) -> list[tuple[str, str | None]]:
    """The (key, value) members of a Structured Fields dictionary, in order; a value is the
    bare item's text, None for a key with no value. ValueError if it does not parse."""
    if len(text) > MAX_FIELD:
        raise ValueError(f"longer than {MAX_FIELD} characters")
    members: list[tuple[str, str | None]] = []
    if not text.strip(" \t"):
        return members
    for member in _split(text, ","):
        item = _split(member, ";")[0].strip(" \t")
        key, eq, value = item.partition("=")
        key = key.strip(" \t")
        if not _KEY.match(key):
            raise ValueError(f"the key {key[:40]!r} is not a dictionary key")
        if eq and not value.strip(" \t"):
            raise ValueError(f"the key {key!r} has an empty value")
        members.append((key, value.strip(" \t") if eq else None))
    return members


def usage_statements(text: str, signal: str, where: str) -> list[Statement]:
    """What a usage-preference dictionary says, each statement's rule naming ``where`` it
    was found (``header 2``, ``line 7 for *``)."""
    try:
        members = parse_dictionary(text)
    except ValueError as e:
        return [malformed(signal, f"{where}: {e}")]
    out: list[Statement] = []
    for key, value in members:
        if key not in PARENT:
            continue
        shown = f"{key}={value}" if value is not None else key
        rule = f'{signal}: "{shown[:80]}" ({where})'
        if value == "y":
            out.append(Statement(signal, key, "allowed", rule))
        elif value == "n":
            out.append(Statement(signal, key, "reserved", rule))
        else:
            out.append(Statement(signal, key, "reserved", rule + ", not y or n"))
    return out
