"""Work identifiers: one canonical text per work, so a bulk check is one indexed lookup.

Accepted forms (the canonical form is what the registry stores and answers with):

- ``https://host/path`` or ``url:https://host/path``  → ``url:https://host/path`` (scheme and
  host lower-cased; http and https only)
- ``sha256:<64 hex digits>``                            → a content hash (lower-cased)
- ``repo:host/owner/name``                              → a repository
- ``contributor:<dataset>/<id>``                        → a contributor of one dataset (a
  MovieLens user, a code package's author)
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from datalever.errors import DataleverError

MAX_LENGTH = 2000
KINDS = ("url", "content_hash", "repository", "dataset_contributor")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
FORMS = (
    "https://host/path, sha256:<64 hex digits>, repo:host/owner/name or contributor:<dataset>/<id>"
)


def _bad(work: object, why: str) -> DataleverError:
    shown = repr(work)
    shown = shown if len(shown) <= 90 else shown[:60] + "…" + shown[-20:]
    return DataleverError(f"Malformed work id {shown}: {why}.", f"write it as {FORMS}.")


def parse_work(work: object) -> tuple[str, str]:
    """(kind, canonical id) of a work id, or a ``DataleverError`` saying what is wrong."""
    if not isinstance(work, str):
        raise _bad(work, "not text")
    if not work or len(work) > MAX_LENGTH:
        raise _bad(work, f"empty or longer than {MAX_LENGTH} characters")
    if _BAD_CHARS.search(work):
        raise _bad(work, "it contains spaces or control characters")
    text = work.removeprefix("url:")
    if text.lower().startswith(("http://", "https://")):
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:
            raise _bad(work, "not a valid URL") from None
        if not host:
            raise _bad(work, "the URL has no host")
        canonical = urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, "")
        )
        return "url", f"url:{canonical}"
    prefix, sep, rest = work.partition(":")
    if not sep:
        raise _bad(work, "no kind prefix")
    prefix = prefix.lower()
    if prefix == "url":
        raise _bad(work, "only http and https URLs are works")
    if prefix == "sha256":
        digest = rest.lower()
        if not _HEX64.fullmatch(digest):
            raise _bad(work, "a sha256 content hash is 64 hexadecimal digits")
        return "content_hash", f"sha256:{digest}"
    if prefix == "repo":
        segments = rest.split("/")
        if len(segments) < 3 or not all(segments):
            raise _bad(work, "a repository is host/owner/name")
        return "repository", f"repo:{segments[0].lower()}/{'/'.join(segments[1:])}"
    if prefix == "contributor":
        dataset, slash, ident = rest.partition("/")
        if not slash or not dataset or not ident:
            raise _bad(work, "a contributor is <dataset>/<id>")
        return "dataset_contributor", f"contributor:{dataset}/{ident}"
    raise _bad(work, f"unknown kind {prefix[:30]!r}")
