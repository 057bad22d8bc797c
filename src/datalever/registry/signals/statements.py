"""What every signal parser returns: statements about purposes, each naming its rule.

A parser never answers a question about one purpose; it lists what its signal says about
each purpose it covers. ``resolve`` then answers for a purpose with the purpose chain, so a
``train-ai`` reservation also answers a question about ``train-genai``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from datalever.registry.purposes import purpose_chain

Outcome = Literal["allowed", "reserved"]

MAX_TEXT_BYTES = 512 * 1024
"""Site-wide text files are read up to this size (RFC 9309 asks parsers for 500 KiB)."""


@dataclass(frozen=True)
class Statement:
    """One thing a signal says: ``outcome`` for ``purpose``, because of ``rule``.

    ``malformed`` marks a statement made because the input could not be read; it reserves
    every purpose (``tdm`` is the root) and outranks any readable statement of its signal,
    so a garbled file never lets a work through.
    """

    signal: str
    purpose: str
    outcome: Outcome
    rule: str
    malformed: bool = False


def malformed(signal: str, why: str) -> Statement:
    """The reservation an unreadable input stands for."""
    return Statement(signal, "tdm", "reserved", f"{signal}: unreadable ({why})", malformed=True)


def resolve(statements: Iterable[Statement], purpose: str) -> Statement | None:
    """The statement that answers ``purpose``, or None when none applies.

    An unreadable input wins; then the statement about the most specific purpose in the
    chain; between statements about the same purpose, a reservation wins.
    """
    chain = purpose_chain(purpose)
    applicable = [s for s in statements if s.purpose in chain]
    if not applicable:
        return None
    for s in applicable:
        if s.malformed:
            return s
    best = min(chain.index(s.purpose) for s in applicable)
    top = [s for s in applicable if chain.index(s.purpose) == best]
    for s in top:
        if s.outcome == "reserved":
            return s
    return top[0]


def as_text(data: str | bytes, signal: str) -> tuple[str | None, Statement | None]:
    """Text from raw input, or the reservation for input that is not UTF-8 text.

    Input over ``MAX_TEXT_BYTES`` is cut there, as RFC 9309 allows for robots.txt.
    """
    if isinstance(data, str):
        return data[:MAX_TEXT_BYTES], None
    raw = bytes(data[:MAX_TEXT_BYTES])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start < len(raw) - 3:  # not merely a character cut at the size limit
            return None, malformed(signal, f"not UTF-8 text at byte {e.start}")
        text = raw[: e.start].decode("utf-8-sig")
    if "\x00" in text:
        return None, malformed(signal, "binary content")
    return text, None


def quote(value: str, limit: int = 80) -> str:
    """A value as rules show it: quoted, cut to ``limit`` characters."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return '"' + shown.replace('"', '\\"') + '"'
