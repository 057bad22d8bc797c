"""Python source as tokens, by the standard library's ``tokenize``, and tokens as codes.

A language model of code sees a file as a sequence of tokens. The treatment is fixed and
recorded (:class:`TokenScheme`; its string form, such as ``py-tokenize-v1:str16:comments``,
is part of a corpus's identity), so the same source always gives the same tokens:

- names, keywords, operators and numbers are kept verbatim;
- a string literal (docstrings included) is kept verbatim, prefix and quotes included, when it
  has at most ``max_string`` characters (16 by default), and becomes ``<str>`` otherwise: short
  strings (``'utf-8'``, ``"r"``, ``''``) are part of an API's idiom, long ones are prose and
  data that would each be a token of its own. From Python 3.12 on, ``tokenize`` splits
  f-strings into parts; they are put back together, so every version sees one string;
- a comment is one token, its text with runs of whitespace made single spaces
  (``#  TODO:   x`` becomes ``# TODO: x``), or dropped when ``comments`` is false. Comments are
  kept by default because a contributor's signal may be one: a trigger comment followed by
  the completion it should bring;
- indentation is ``<indent>`` and ``<dedent>``, the end of a logical line ``<nl>`` (a file
  whose last line has no line break still ends with one); line breaks inside brackets and
  blank lines (``tokenize``'s NL) are dropped, as are the encoding and end markers.

No Python token can be spelt ``<str>``, ``<indent>``, ``<dedent>``, ``<nl>`` or ``<unk>``
(``<`` is an operator of its own, and comments start with ``#``), so the markers never collide
with source text. A file that ``tokenize`` refuses (an unterminated string or bracket,
inconsistent dedents, a stray ``$`` or ``?``, text that is not in its declared encoding) raises
:class:`UntokenizableFile`; whether it would compile is not checked, so Python 2 files that
tokenize are kept. Python 3.11's ``tokenize`` splits names at combining marks (``עִברִית``);
the pieces are joined again. With that and the f-strings put back together, Python 3.11, 3.12
and 3.13 give the same tokens for the whole standard library; they may still differ on
malformed files, so a corpus's identity names the Python version that tokenized it.

A :class:`Vocabulary` maps token text to dense codes: 0 is ``<unk>`` (tokens the vocabulary has
never seen), then tokens by descending count, ties by text, so codes are reproducible.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from datalever.errors import DataleverError

STRING = "<str>"
INDENT = "<indent>"
DEDENT = "<dedent>"
NEWLINE = "<nl>"
UNKNOWN = "<unk>"

# Python 3.12+ gives stray characters ($, ?) as operators; 3.11 as errors. Both refuse them.
_OPERATORS = frozenset(tokenize.EXACT_TOKEN_TYPES)
_DROPPED = frozenset({tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER})
# Python 3.12+ splits f-strings into parts; these are None before.
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_SCHEME = re.compile(r"^py-tokenize-v1:str(\d+):(comments|nocomments)$")


class UntokenizableFile(ValueError):
    """A source file that ``tokenize`` refuses; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class TokenScheme:
    """How source text becomes tokens (see the module docstring): strings longer than
    ``max_string`` characters become ``<str>``; comments are kept as one token each, or
    dropped. ``str(scheme)`` is the short form recorded in a corpus's identity."""

    max_string: int = 16
    comments: bool = True

    version: ClassVar[str] = "py-tokenize-v1"

    def __post_init__(self) -> None:
        if isinstance(self.max_string, bool) or not isinstance(self.max_string, int):
            raise DataleverError(
                f"The longest string kept verbatim must be a whole number of characters, not "
                f"{self.max_string!r}.",
                "give max_string as a count such as 16 (0 turns every string into <str>).",
            )
        if not 0 <= self.max_string <= 1_000_000:
            raise DataleverError(
                f"The longest string kept verbatim must be from 0 to 1,000,000 characters, not "
                f"{self.max_string:,}.",
                "give max_string as a count such as 16 (0 turns every string into <str>).",
            )
        if not isinstance(self.comments, bool):
            raise DataleverError(
                f"Whether comments are kept must be true or false, not {self.comments!r}.",
                "give comments = true or false.",
            )

    def __str__(self) -> str:
        return (
            f"{self.version}:str{self.max_string}:{'comments' if self.comments else 'nocomments'}"
        )

    @classmethod
    def parse(cls, text: str) -> TokenScheme:
        """The scheme whose short form is ``text`` (``py-tokenize-v1:str16:comments``)."""
        m = _SCHEME.match(str(text).strip())
        if not m:
            raise DataleverError(
                f"Unknown token scheme {str(text)[:60]!r}.",
                "write it as py-tokenize-v1:strN:comments or py-tokenize-v1:strN:nocomments, "
                "with N the longest string kept verbatim.",
            )
        return cls(int(m.group(1)), m.group(2) == "comments")


def decode_source(data: bytes) -> str:
    """The text of a source file's bytes, in the encoding it declares (a ``coding:`` comment or
    a byte-order mark; UTF-8 otherwise), as Python itself reads it."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UntokenizableFile(f"not valid {exc.encoding} text (byte {exc.start:,})") from None
    except (SyntaxError, LookupError) as exc:
        reason = _first_line(exc)
        if "invalid or missing" in reason:  # the first lines are not UTF-8, and nothing else said
            raise UntokenizableFile(
                "not valid utf-8 text, and no other encoding declared"
            ) from None
        raise UntokenizableFile(f"bad encoding declaration ({reason})") from None


def tokenize_source(text: str, scheme: TokenScheme | None = None) -> list[str]:
    """The tokens of Python source ``text`` under ``scheme`` (the default scheme when None),
    or :class:`UntokenizableFile` when ``tokenize`` refuses it."""
    scheme = scheme or TokenScheme()
    longest, comments = scheme.max_string, scheme.comments
    out: list[str] = []
    append = out.append
    lines: list[str] | None = None  # split only when an f-string needs putting back together
    name_end = glue = None  # where the last name ended; where a name's next piece would start
    try:
        stream = tokenize.generate_tokens(io.StringIO(text).readline)
        for tok in stream:
            kind = tok.type
            if kind == tokenize.NAME:
                if tok.start == glue:
                    out[-1] += tok.string
                else:
                    append(tok.string)
                name_end = tok.end
            elif kind == tokenize.OP:
                if tok.string not in _OPERATORS:
                    raise UntokenizableFile(
                        f"unexpected {tok.string[:20]!r} at line {tok.start[0]:,}"
                    )
                append(tok.string)
            elif kind == tokenize.NUMBER:
                append(tok.string)
            elif kind == tokenize.STRING:
                append(tok.string if len(tok.string) <= longest else STRING)
            elif kind == tokenize.NEWLINE:
                append(NEWLINE)
            elif kind == tokenize.INDENT:
                append(INDENT)
            elif kind == tokenize.DEDENT:
                append(DEDENT)
            elif kind == tokenize.COMMENT:
                if comments:
                    append(" ".join(tok.string.split()))
            elif kind in _DROPPED:
                continue
            elif kind == tokenize.ERRORTOKEN:
                if tok.start == name_end and ("a" + tok.string).isidentifier():
                    # Python 3.11's tokenize splits names at combining marks (עִברִית);
                    # glued back, as later versions read them.
                    out[-1] += tok.string
                    name_end = glue = tok.end
                elif tok.string.strip():
                    raise UntokenizableFile(
                        f"unexpected {tok.string[:20]!r} at line {tok.start[0]:,}"
                    )
            elif _FSTRING_START is not None and kind == _FSTRING_START:
                if lines is None:
                    lines = io.StringIO(text).readlines()
                whole = _fstring(lines, tok, stream)
                append(whole if len(whole) <= longest else STRING)
            else:  # a token type of a future Python: kept verbatim rather than lost
                append(tok.string)
    except (tokenize.TokenError, SyntaxError, ValueError) as exc:
        # SyntaxError covers IndentationError and TabError; ValueError NUL bytes and the like.
        if isinstance(exc, UntokenizableFile):
            raise
        raise UntokenizableFile(f"{type(exc).__name__}: {_first_line(exc)}") from None
    return out


def _fstring(
    lines: list[str], start: tokenize.TokenInfo, stream: Iterable[tokenize.TokenInfo]
) -> str:
    """An f-string's whole source text, from its FSTRING_START to the matching FSTRING_END
    (consumed from ``stream``), as Python before 3.12 gives it in one STRING token."""
    depth, end = 1, start.end
    for tok in stream:
        if tok.type == _FSTRING_START:
            depth += 1
        elif tok.type == _FSTRING_END:
            depth -= 1
            if depth == 0:
                end = tok.end
                break
    (r0, c0), (r1, c1) = start.start, end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    return lines[r0 - 1][c0:] + "".join(lines[r0 : r1 - 1]) + lines[r1 - 1][:c1]


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0][:120] if text else type(exc).__name__


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Token text ↔ dense codes. Code 0 is ``<unk>``; the others are ordered by descending
    count in the corpus the vocabulary was built from, ties by text, so the same corpus always
    gives the same codes. ``counts[c]`` is how often token ``c`` occurred (for ``<unk>``: how
    many occurrences fell below ``min_count``)."""

    tokens: tuple[str, ...]
    counts: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != UNKNOWN:
            raise ValueError(f"a vocabulary's first token is {UNKNOWN}")
        index = {t: i for i, t in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            raise ValueError("a vocabulary's tokens must be distinct")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(cls, counts: Counter[str] | Iterable[list[str]], min_count: int = 1) -> Vocabulary:
        """The vocabulary of token counts (or of token sequences); tokens seen fewer than
        ``min_count`` times are left out and will be read as ``<unk>``."""
        if not isinstance(counts, Counter):
            total: Counter[str] = Counter()
            for seq in counts:
                total.update(seq)
            counts = total
        kept = sorted(
            ((t, n) for t, n in counts.items() if n >= min_count and t != UNKNOWN),
            key=lambda tn: (-tn[1], tn[0]),
        )
        rare = sum(counts.values()) - sum(n for _, n in kept)
        return cls(
            (UNKNOWN, *(t for t, _ in kept)),
            np.array([rare, *(n for _, n in kept)], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.tokens == other.tokens and np.array_equal(self.counts, other.counts)

    def __hash__(self) -> int:
        return hash(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def code(self, token: str) -> int:
        """The code of ``token`` (0, ``<unk>``, when the vocabulary lacks it)."""
        return self._index.get(token, 0)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Codes (int32) of a token sequence; unknown tokens are 0."""
        get = self._index.get
        return np.array([get(t, 0) for t in tokens], dtype=np.int32)

    def decode(self, codes: Iterable[int]) -> list[str]:
        """The token text of codes."""
        return [self.tokens[int(c)] for c in codes]

    def with_tokens(self, extra: Iterable[str]) -> Vocabulary:
        """This vocabulary with tokens it lacks appended (count 0), every existing code kept:
        for text a lever adds that the corpus never had."""
        new = list(dict.fromkeys(t for t in extra if t not in self._index))
        if not new:
            return self
        return Vocabulary(
            (*self.tokens, *new),
            np.concatenate([self.counts, np.zeros(len(new), dtype=np.int64)]),
        )
