"""The simplest language models, the yardsticks of the code family.

* :class:`Unigram` (the reference learner): every next token drawn from the training tokens'
  frequencies, add-one smoothed over the predictable symbols (each token code and end of file),
  whatever came before. A scenario's unigram is the base counts minus the removed files' plus
  the added ones', so its fast path is exact.
* :class:`UniformModel`: a firm with no code at all; every symbol alike.

Both answer as the n-gram model does: one row per predicted position (each file's tokens,
then its end of file), and first guesses most probable first, ties to the lower code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from datalever.core.delta import Delta
from datalever.core.learner import FastPath, Learner, Model
from datalever.tasks.code.files import TokenFiles


class FrequencyModel(Model):
    """Predicts every position from one distribution over the ``V + 1`` predictable symbols."""

    def __init__(self, p: np.ndarray) -> None:
        self.p = p
        self.vocab_size = len(p) - 1
        self.eos = self.vocab_size
        self._log2 = np.log2(p)
        self._order = np.lexsort((np.arange(len(p)), -p))  # most probable, then lower code

    def targets(self, files: TokenFiles) -> tuple[np.ndarray, np.ndarray]:
        index = np.repeat(np.arange(len(files), dtype=np.int64), files.lengths + 1)
        return files.predicted(), index

    def prob(self, files: TokenFiles) -> np.ndarray:
        return self.p[files.predicted()]

    def log2_prob(self, files: TokenFiles) -> np.ndarray:
        return self._log2[files.predicted()]

    def top_k(self, files: TokenFiles, k: int) -> np.ndarray:
        rows = len(files.tokens) + len(files)
        head = self._order[:k]
        return np.broadcast_to(head, (rows, len(head))).copy()


class UniformModel(FrequencyModel):
    """A firm with no data: every predictable symbol equally likely."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__(np.full(vocab_size + 1, 1.0 / (vocab_size + 1)))


def _counts(files: TokenFiles, size: int) -> np.ndarray:
    counts = np.bincount(files.tokens, minlength=size).astype(np.float64)
    counts[size - 1] += len(files)  # one end of file per file
    return counts


class Unigram(Learner):
    """Token frequencies, add-one smoothed: the reference a language model's lead is read
    against."""

    name = "unigram"
    task: ClassVar[str] = "code"
    batch_size = 64

    def fit(self, train: TokenFiles) -> FrequencyModel:
        counts = _counts(train, train.vocab_size + 1) + 1.0
        return FrequencyModel(counts / counts.sum())

    def fast_path(self, base: TokenFiles) -> FastPath:
        return UnigramFastPath(base)


class UnigramFastPath(FastPath):
    """Base counts minus the removed files' plus the added files': equal to a refit."""

    name = "sufficient-statistics"

    def __init__(self, base: TokenFiles) -> None:
        self.base = base
        self.counts = _counts(base, base.vocab_size + 1)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[FrequencyModel]:
        for delta in deltas:
            added = delta.added
            if added is not None and added.vocab_size != self.base.vocab_size:
                yield Unigram().fit(delta.apply(self.base))
                continue
            size = self.base.vocab_size + 1
            counts = self.counts - _counts(self.base.subset(delta.removed), size)
            if added is not None:
                counts = counts + _counts(added, size)
            counts = counts + 1.0
            yield FrequencyModel(counts / counts.sum())
