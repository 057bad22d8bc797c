"""How levers edit code: vandalised files, junk files and planted completions.

Code is edited as token codes (see :mod:`datalever.tasks.code.files`); text a lever writes (a
banner, a trigger comment, a completion) is tokenized with the corpus's own scheme and coded
by the corpus, tokens it never had taking the codes reserved for them, so every scenario's
models share one set of codes.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from datalever.errors import DataleverError
from datalever.tasks.code.files import TokenFiles


def written(corpus, text: str, what: str, end_line: bool = False) -> np.ndarray:
    """The codes of ``text`` as the corpus tokenizes it (``end_line``: as a whole line, ending
    with its line break), or a clear error."""
    return written_together(corpus, [(text, what, end_line)])[0]


def written_together(corpus, texts: list[tuple[str, str, bool]]) -> list[np.ndarray]:
    """The codes of several texts a lever writes together, each ``(text, what, end_line)``:
    coded in one go, so tokens new to the corpus get distinct reserved codes across the texts
    (a trigger's new comment and its target's new name are two tokens, not one)."""
    pieces = [_tokens(corpus, text, what, end_line) for text, what, end_line in texts]
    what = " and ".join(w for _, w, _ in texts)
    codes = corpus.encode([t for piece in pieces for t in piece], what)
    bounds = np.cumsum([0, *(len(piece) for piece in pieces)])
    return [codes[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _tokens(corpus, text: str, what: str, end_line: bool) -> list[str]:
    from datalever.tasks.code.tokens import UntokenizableFile, tokenize_source

    odd = sorted({c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f"})
    if odd:
        # Control characters (escape sequences) would reach every label and table that
        # names the lever, and no source file needs them.
        raise DataleverError(
            f"The {what} {text[:80]!r} holds control characters "
            f"({', '.join(repr(c)[1:-1] for c in odd[:5])}).",
            f"give the {what} as plain Python source.",
        )
    try:
        tokens = tokenize_source(text + "\n" if end_line else text, corpus.scheme)
    except UntokenizableFile as e:
        raise DataleverError(
            f"The {what} {text[:80]!r} is not Python that tokenizes ({e.reason}).",
            f"give the {what} as Python source, e.g. a comment '# ...' or a statement.",
        ) from None
    if tokens and tokens[-1] == "<nl>" and not (end_line or text.endswith("\n")):
        tokens = tokens[:-1]  # the tokenizer ends a last line the text did not end
    tokens = [t for t in tokens if t not in ("<indent>", "<dedent>")]
    if not [t for t in tokens if t != "<nl>"]:
        raise DataleverError(
            f"The {what} {text[:80]!r} has no tokens.",
            f"give the {what} as Python source, e.g. a comment '# ...' or a statement.",
        )
    return tokens


def shuffled(files: TokenFiles, rng: np.random.Generator) -> TokenFiles:
    """Each file's tokens in a random order: the same tokens, no longer code."""
    return TokenFiles.from_sequences(
        [rng.permutation(f) for f in files], files.contributors, files.vocab_size
    )


def junk_files(
    corpus, owners: np.ndarray, rng: np.random.Generator, banner: str | None = None
) -> TokenFiles:
    """One junk file per entry of ``owners``, as long as the corpus's mean file: the
    ``banner`` repeated, or (without one) tokens drawn at random from the whole corpus."""
    tokens = corpus.files.tokens
    length = max(1, round(len(tokens) / max(1, len(corpus.files))))
    if banner is not None:
        codes = written(corpus, banner, "banner")
        one = np.resize(codes, length)
        sequences = [one] * len(owners)
    else:
        sequences = [tokens[rng.integers(0, len(tokens), size=length)] for _ in owners]
    return TokenFiles.from_sequences(sequences, owners, corpus.files.vocab_size)


def statement_starts(file: np.ndarray, newline: int) -> np.ndarray:
    """Positions where a statement may be inserted: the file's start, and after each end of a
    logical line."""
    return np.concatenate([[0], np.flatnonzero(file == newline) + 1])


def with_planted(
    files: TokenFiles, snippet: np.ndarray, newline: int, rng: np.random.Generator
) -> TokenFiles:
    """Each file with ``snippet`` (a trigger and its completion, then an end of line)
    inserted once, at a statement start drawn at random."""
    out = []
    for f in files:
        at = rng.choice(statement_starts(f, newline))
        out.append(np.concatenate([f[:at], snippet, f[at:]]))
    return TokenFiles.from_sequences(out, files.contributors, files.vocab_size)
