"""Path patterns in the robots.txt style (RFC 9309 §2.2.3), shared by the formats that
borrowed it: ``Content-Usage`` rules, ai.txt and tdmrep.json locations.

``*`` matches any run of characters and a final ``$`` anchors the end; anything else is a
prefix of the URL path (with its query). A pattern that does not start with ``/`` or ``*``
(ai.txt writes ``*.jpg`` and sometimes ``.jpg``) is read as matching the end of the path.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MAX_PATTERN = 2048


def path_of(url: str) -> str:
    """The path and query of ``url`` that patterns are matched against (``/`` if none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    path = unquote(parts.path) or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path + ("?" + parts.query if parts.query else "")


def _pieces(pattern: str) -> tuple[list[str], bool]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    if not body.startswith(("/", "*")):
        body, anchored = "*" + body, True  # an extension such as ".jpg"
    elif body.startswith("*.") and "/" not in body:
        anchored = True  # "*.jpg" names files that end in .jpg, not paths that hold it
    return [unquote(piece) for piece in body.split("*")], anchored


def matches(pattern: str, path: str) -> bool:
    """Whether ``pattern`` matches ``path``; an empty or oversized pattern matches nothing.

    Glob matching by leftmost search, piece by piece: linear in the path, so a pattern
    full of ``*`` cannot stall a reader the way a backtracking regular expression could.
    """
    if not pattern or len(pattern) > MAX_PATTERN:
        return False
    pieces, anchored = _pieces(pattern)
    first, rest = pieces[0], pieces[1:]
    if not path.startswith(first):
        return False
    if not rest:
        return not anchored or path == first
    position = len(first)
    for piece in rest[:-1]:
        found = path.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    last = rest[-1]
    if anchored:
        return len(path) - len(last) >= position and path.endswith(last)
    return path.find(last, position) >= 0


def specificity(pattern: str) -> int:
    """How specific a pattern is, for longest-match precedence: its length, as in RFC 9309."""
    return len(pattern)
