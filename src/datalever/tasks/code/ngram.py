"""N-gram language models of source code: interpolated modified Kneser–Ney.

The model is Chen & Goodman's (1998) interpolated modified Kneser–Ney. At the top order ``n``
and for a context ``h`` seen in training,

    p(w | h) = (c(hw) - D(c(hw))) / c(h•) + γ(h) p(w | h'),
    γ(h) = (D1 N1(h•) + D2 N2(h•) + D3+ N3+(h•)) / c(h•),

where ``h'`` drops the oldest symbol of ``h``, ``c(h•)`` is the sum of the counts after ``h``
and ``N_r(h•)`` the number of symbols seen ``r`` times after it (``N3+``: three times or more).
Lower orders use the same formula with continuation counts ``N1+(• h w)``, the number of
distinct symbols seen before ``h w``, in place of counts. The lowest order interpolates with
the uniform distribution over the ``V + 1`` symbols a model predicts: the corpus's whole
vocabulary (``<unk>``, code 0, included) and EOS. A context never seen in training passes the
lower order's probability through unchanged. Each order has its own three discounts from its
counts of counts (see :func:`~datalever.tasks.code.ngram_counts.discounts`, which also says
what is used where they are undefined); every discount lies in ``(0, r)``, so each order's
probabilities sum to 1, every symbol has a positive probability and a seen n-gram is likelier
than the same symbol unseen.

Files are padded with ``n - 1`` BOS symbols (code ``V + 1``, context only) and one EOS (code
``V``, predicted like a token); see :mod:`~datalever.tasks.code.ngram_counts` for the tables.
A model predicts, for each file, its tokens then its EOS: ``lengths + 1`` values per file, in
file order (:meth:`NgramModel.targets` gives the codes and the file of each).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np
from pydantic import Field

from datalever.core.config import LearnerConfig
from datalever.core.delta import Delta
from datalever.core.learner import FastPath, Learner, Model
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.ngram_counts import (
    KNStatistics,
    NgramTables,
    Padded,
    bos_code,
    eos_code,
    extend_tables,
    kn_statistics,
    kn_update,
    net_change,
    pad,
    ranges,
)

#: A shortlist of :meth:`NgramModel.top_k` keeps every symbol whose probability is within
#: this relative distance of its ``k``-th best: far above the rounding of the few products
#: that follow (about 1e-16 each), so nothing it drops can climb back into the top ``k``.
NEAR_TIE = 1e-12


def _shortlist(rows: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Which candidates to keep, given their rows (sorted) and probabilities (best first
    within a row, every row at least ``k`` long): the ``k`` best of each row and any as
    probable as its ``k``-th, up to :data:`NEAR_TIE`."""
    first = np.searchsorted(rows, rows)
    rank = np.arange(len(rows)) - first
    return (rank < k) | (p >= p[first + k - 1] * (1.0 - NEAR_TIE))


class NgramModel(Model):
    """A fitted n-gram model: count tables (shared between the scenarios of a fold) and its
    own Kneser–Ney statistics (see :class:`~datalever.tasks.code.ngram_counts.KNStatistics`).

    Scoring is vectorised over positions: a few ``searchsorted`` per order, never a Python
    loop per token. Backoff weights are computed where they are used, from integer
    statistics, so every path to a model gives the same probabilities to the last bit.
    """

    def __init__(
        self, tables: NgramTables, stats: KNStatistics, lookups: Lookups | None = None
    ) -> None:
        self.tables = tables
        self.stats = stats
        self.order = tables.order
        self.vocab_size = tables.vocab_size
        # Where the table ids of held-out files' n-grams are kept: shared by the models of a
        # fast path that use the base's tables, so a fold's held-out files are looked up once.
        self._lookups = lookups if lookups is not None else Lookups(tables)

    @property
    def eos(self) -> int:
        return eos_code(self.vocab_size)

    @property
    def bos(self) -> int:
        return bos_code(self.vocab_size)

    def counts(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """The n-grams of length ``order`` with a positive count, as rows of codes in
        lexicographic order, and their counts: raw counts at the model's order, continuation
        counts ``N1+(• g)`` below it. Equal training data give equal tables, whatever the
        path that fitted them."""
        if not 1 <= order <= self.order:
            raise ValueError(f"order must be from 1 to {self.order}, got {order}")
        a = self.stats.counts[order].dense()
        ids = np.flatnonzero(a > 0)
        grams = np.empty((len(ids), order), dtype=np.int64)
        current = ids
        for j in range(order, 0, -1):
            key = self.tables.keys[j][current]
            grams[:, j - 1] = key % self.tables.width
            current = key // self.tables.width
        rank = np.lexsort(grams.T[::-1])
        return grams[rank], a[ids][rank]

    def targets(self, files: TokenFiles) -> tuple[np.ndarray, np.ndarray]:
        """The code predicted at each position (each file's tokens, then EOS) and the index
        of its file: the rows of :meth:`log2_prob` and :meth:`top_k`."""
        padded = pad(files, self.order, self.vocab_size)
        file_index = np.repeat(np.arange(len(files), dtype=np.int64), np.diff(files.offsets) + 1)
        return padded.symbols[padded.predicted], file_index

    def prob(self, files: TokenFiles) -> np.ndarray:
        """The probability of every predicted symbol given its history, in file order."""
        contexts, symbols, found = self._lookups.get(files, self)
        return self._interpolate(contexts, symbols, self.order, found)

    def log2_prob(self, files: TokenFiles) -> np.ndarray:
        """``log2`` of :meth:`prob`: minus the mean over a file is its cross-entropy in bits
        per token (EOS included)."""
        return np.log2(self.prob(files))

    def top_k(self, files: TokenFiles, k: int) -> np.ndarray:
        """The ``k`` most probable next symbols (tokens or EOS, never BOS) at each predicted
        position, most probable first, ties by the lower code: shape ``(positions, k)``.

        Exact, without scoring the whole vocabulary at every position. At order ``j`` and a
        known context ``c``, a symbol never seen after ``c`` gets ``γ(c) p_{j-1}(w | c')``,
        which keeps the order of ``p_{j-1}(· | c')``; so the best of ``p_j(· | c)`` lie among
        the symbols seen after ``c`` and the best of ``p_{j-1}(· | c')``. A shortlist is
        built per distinct context, order by order, from the lowest order's (the whole
        vocabulary, scored once); the answer is the head of the position's last shortlist.
        Rounding can turn a near tie at a lower order into a tie above it (then the lower
        code wins), so a shortlist keeps its best ``k`` and every symbol within a relative
        :data:`NEAR_TIE` of the ``k``-th: what it drops stays below ``k`` others to the end.
        """
        if not 1 <= k <= self.vocab_size + 1:
            raise ValueError(f"k must be from 1 to {self.vocab_size + 1} (tokens and EOS)")
        padded = pad(files, self.order, self.vocab_size)
        contexts = self._contexts(padded)
        width = self.tables.width
        # Shortlists as rows of one flat array: row r is tokens[starts[r]:starts[r + 1]].
        everything = np.arange(self.vocab_size + 1, dtype=np.int64)
        lowest = self._interpolate([everything[:0], everything * 0], everything, 1)
        best = np.lexsort((everything, -lowest))
        tokens = everything[best][_shortlist(everything * 0, lowest[best], k)]
        starts = np.array([0, len(tokens)], dtype=np.int64)
        row = np.zeros(len(padded.predicted), dtype=np.int64)  # each position's shortlist
        for j in range(2, self.order + 1):
            live = self._known(j, contexts[j])
            if len(live) == 0:  # a known context's shorter contexts are known: none further
                break
            unique, first, inverse = np.unique(
                contexts[j][live], return_index=True, return_inverse=True
            )
            reps = live[first]
            which, symbols = self.tables.children(j, unique)
            useful = symbols != self.bos
            lo, hi = starts[row[reps]], starts[row[reps] + 1]
            inherited = np.repeat(np.arange(len(unique), dtype=np.int64), hi - lo)
            which = np.concatenate([which[useful], inherited])
            symbols = np.concatenate([symbols[useful], tokens[ranges(lo, hi)]])
            pairs = np.sort(which * width + symbols)  # each (context, symbol) once
            pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
            which, symbols = pairs // width, pairs % width
            chain = [contexts[0], *(contexts[i][reps][which] for i in range(1, j + 1))]
            p = self._interpolate(chain, symbols, j)
            best = np.lexsort((symbols, -p, which))
            keep = best[_shortlist(which[best], p[best], k)]
            row[live] = len(starts) - 1 + inverse
            tokens = np.concatenate([tokens, symbols[keep]])
            lengths = np.bincount(which[keep], minlength=len(unique))
            starts = np.concatenate([starts, starts[-1] + np.cumsum(lengths)])
        return tokens[starts[row][:, None] + np.arange(k)]

    def _known(self, j: int, contexts: np.ndarray) -> np.ndarray:
        """The positions whose order-``j`` context was seen in training."""
        live = np.flatnonzero(contexts >= 0)
        return live[self.stats.totals[j].take(contexts[live]) > 0]

    def _contexts(self, padded: Padded) -> list[np.ndarray]:
        """For each order ``j`` (index 0 unused), the id of each predicted position's
        context (the ``j - 1`` symbols before it), ``-1`` where the table lacks it."""
        predicted, symbols, width = padded.predicted, padded.symbols, self.tables.width
        out = [predicted[:0], np.zeros(len(predicted), dtype=np.int64)]
        previous = np.zeros(len(symbols), dtype=np.int64)
        for j in range(1, self.order):
            at = np.flatnonzero(padded.depth >= j - 1)
            keys = symbols[at] if j == 1 else previous[at - 1] * width + symbols[at]
            current = np.full(len(symbols), -1, dtype=np.int64)
            current[at] = self.tables.find(j, keys)  # a key with an unknown prefix is < 0
            previous = current
            out.append(current[predicted - 1])
        return out

    def _interpolate(
        self,
        contexts: list[np.ndarray],
        symbols: np.ndarray,
        upto: int,
        found_all: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """``p_upto(symbol | context)``, given each pair's context id at every order up to
        ``upto`` (and, when known, the id of each pair's n-gram, ``-1`` where the table lacks
        it): the one computation behind every probability a model gives."""
        p = np.full(len(symbols), 1.0 / (self.vocab_size + 1))
        width, stats = self.tables.width, self.stats
        for j in range(1, upto + 1):
            live = self._known(j, contexts[j])
            if len(live) == 0:
                continue
            context = contexts[j][live]
            if found_all is None:
                found = self.tables.find(j, context * width + symbols[live])
            else:
                found = found_all[j][live]
            seen = np.flatnonzero(found >= 0)
            a = np.zeros(len(live), dtype=np.int64)
            a[seen] = stats.counts[j].take(found[seen])
            d = stats.discounts[j]
            discounted = a - d[np.minimum(a, 3)]
            total = stats.totals[j].take(context)
            kinds = stats.buckets[j].take(context)
            gamma = (d[1] * kinds[:, 0] + d[2] * kinds[:, 1] + d[3] * kinds[:, 2]) / total
            p[live] = discounted / total + gamma * p[live]
        return p


class Lookups:
    """The table ids of some files' contexts and n-grams, for one set of n-gram tables.

    They depend on the tables alone, not on a scenario's counts, so every model that shares
    the tables (a fast path's models without added files) reads them from here: a fold's
    held-out files are looked up once, not once per scenario. Keyed by the files object
    itself (the judge scores the same held-out files for every model)."""

    def __init__(self, tables: NgramTables) -> None:
        self.tables = tables
        self._files: TokenFiles | None = None
        self._value: tuple[list[np.ndarray], np.ndarray, list[np.ndarray]] | None = None

    def get(
        self, files: TokenFiles, model: NgramModel
    ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """Each order's context ids, the predicted symbols, and each order's n-gram ids."""
        if self._files is files and self._value is not None:
            return self._value
        padded = pad(files, model.order, model.vocab_size)
        contexts = model._contexts(padded)
        symbols = padded.symbols[padded.predicted]
        width = self.tables.width
        found = [contexts[0]]
        for j in range(1, model.order + 1):
            ids = np.full(len(symbols), -1, dtype=np.int64)
            known = np.flatnonzero(contexts[j] >= 0)
            ids[known] = self.tables.find(j, contexts[j][known] * width + symbols[known])
            found.append(ids)
        self._files, self._value = files, (contexts, symbols, found)
        return self._value


class KneserNey(Learner):
    """An n-gram language model with interpolated modified Kneser–Ney smoothing, fitted on
    token files. Its fast path keeps the base's n-gram counts per file and updates the base's
    statistics where a scenario's delta changes them: a scenario costs about its delta, not a
    pass over the corpus."""

    name = "kneser_ney"
    task: ClassVar[str] = "code"
    batch_size = 16

    class Config(LearnerConfig):
        order: int = Field(
            3,
            ge=2,
            le=5,
            description="The n of the n-grams: each token is predicted from the order - 1 "
            "symbols before it.",
        )

    def __init__(self, order: int = 3) -> None:
        self.order: int = self.configure(order=order).order

    def memory_bytes(self, n_contributors: int, width: int, n_records: int) -> int:
        """A coarse estimate: records are files, taken at 4,000 tokens each (the standard
        library's mean is about 2,100), each holding an n-gram id, count and statistics per
        order (about 200 bytes per token and order), plus the vocabulary's unigram tables."""
        return 200 * self.order * 4_000 * n_records + 64 * width

    def fit(self, train: TokenFiles) -> NgramModel:
        empty = NgramTables.empty(self.order, train.vocab_size)
        tables, top = extend_tables(empty, pad(train, self.order, train.vocab_size))
        counts = np.bincount(top, minlength=tables.size(self.order))
        return NgramModel(tables, kn_statistics(tables, counts))

    def fast_path(self, base: TokenFiles) -> NgramFastPath:
        return NgramFastPath(self, base)


class NgramFastPath(FastPath):
    """The base's n-gram tables and statistics and, for every predicted position of the base,
    the id of its top-order n-gram (file ``i``'s positions are one run, ``offsets[i] + i``
    on): a scenario's counts are the base's minus those of the removed files' runs plus the
    added files', and its statistics the base's updated where those counts changed
    (:func:`~datalever.tasks.code.ngram_counts.kn_update`), in O(delta) rather than O(corpus).

    Added files may bring n-grams the base lacks: the scenario's tables are the base's
    extended with them (new ids after the base's), which copies the tables once. Added files
    with a larger vocabulary than the base change every code's meaning (EOS and BOS move);
    such a scenario is fitted plainly.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: KneserNey, base: TokenFiles) -> None:
        self.learner, self.base = learner, base
        n, vocab = learner.order, base.vocab_size
        empty = NgramTables.empty(n, vocab)
        self.tables, self.top = extend_tables(empty, pad(base, n, vocab))
        self.stats = kn_statistics(
            self.tables, np.bincount(self.top, minlength=self.tables.size(n))
        )
        offsets = np.asarray(base.offsets, dtype=np.int64)
        self.runs = offsets - offsets[0] + np.arange(len(base) + 1)
        self.lookups = Lookups(self.tables)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[NgramModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> NgramModel:
        added = delta.added
        if added is not None and added.vocab_size > self.base.vocab_size:
            return self.learner.fit(delta.apply(self.base))
        n = self.learner.order
        # Positions as Delta.apply reads them (negative ones from the end), each once.
        positions = np.arange(len(self.base), dtype=np.int64)
        removed = np.unique(positions[np.asarray(delta.removed, dtype=np.int64)])
        gone = self.top[ranges(self.runs[removed], self.runs[removed + 1])]
        tables, new = self.tables, gone[:0]
        if added is not None and len(added):
            tables, new = extend_tables(tables, pad(added, n, self.base.vocab_size))
        ids, change = net_change(gone, new, tables.size(n))
        stats = kn_update(self.stats, tables, ids, change)
        return NgramModel(tables, stats, self.lookups if tables is self.tables else None)
