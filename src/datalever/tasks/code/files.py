"""Token files: the records of the code task family.

A record is one source file, already turned into token codes (see ``tokens``). Files are kept
as one flat array of codes with offsets, so subsets, deltas and counts work on plain numpy
arrays: file ``i`` is ``tokens[offsets[i]:offsets[i + 1]]`` and was written by contributor
``contributors[i]``. Every token code is below ``vocab_size``, which is the corpus's whole
vocabulary (fixed before any lever acts, so models of every scenario share it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenFiles:
    """Files of token codes: ``tokens`` (int32, all files end to end), ``offsets`` (int64,
    ``n_files + 1`` entries from 0), each file's contributor code and the vocabulary size."""

    tokens: np.ndarray
    offsets: np.ndarray
    contributors: np.ndarray
    vocab_size: int

    @classmethod
    def from_sequences(
        cls, sequences: list[np.ndarray], contributors: np.ndarray, vocab_size: int
    ) -> TokenFiles:
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = (
            np.concatenate([np.asarray(s, dtype=np.int32) for s in sequences])
            if sequences
            else np.zeros(0, dtype=np.int32)
        )
        return cls(tokens, offsets, np.asarray(contributors, dtype=np.int32), vocab_size)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def predicted(self) -> np.ndarray:
        """The symbol a language model predicts at each position: each file's tokens, then its
        end of file (code ``vocab_size``); the rows every code model's answers follow."""
        out = np.full(len(self.tokens) + len(self), self.vocab_size, dtype=np.int64)
        file_of = np.repeat(np.arange(len(self)), self.lengths)
        out[np.arange(len(self.tokens)) + file_of] = self.tokens
        return out

    def file(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self.file(i)

    def subset(self, index: np.ndarray) -> TokenFiles:
        """The files at ``index`` (positions or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return TokenFiles.from_sequences(
            [self.file(int(i)) for i in index], self.contributors[index], self.vocab_size
        )

    def concat(self, other: TokenFiles) -> TokenFiles:
        """These files followed by ``other``'s (the larger vocabulary of the two)."""
        return TokenFiles(
            np.concatenate([self.tokens, other.tokens]),
            np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]),
            np.concatenate([self.contributors, other.contributors]),
            max(self.vocab_size, other.vocab_size),
        )

    def digest_parts(self) -> tuple[np.ndarray | str, ...]:
        return (self.tokens, self.offsets, f"{self.vocab_size}")
