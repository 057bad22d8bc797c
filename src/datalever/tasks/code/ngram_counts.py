"""Count tables of n-gram language models: padding, n-gram ids and Kneser–Ney statistics.

Each file is padded with ``order - 1`` BOS symbols before its tokens and one EOS after them.
With ``V`` the vocabulary size, EOS is the code ``V`` and BOS the code ``V + 1``, so the
``V + 1`` symbols a model predicts (every token and EOS) are the codes ``0 .. V`` and BOS, which
is only ever context, is the one code above them. The predicted positions are the tokens and
the EOS of every file; with the padding, each has a full history of ``order - 1`` symbols.

N-grams are not packed into one integer (five codes of 17 bits do not fit in 64). Instead the
n-grams of each length ``j`` get integer ids: a ``j``-gram is the key
``id(its first j - 1 symbols) × S + its last symbol`` (``S = V + 2`` symbols, the empty 0-gram
has id 0), and a table of length ``j`` holds the sorted keys and their ids, so finding an
n-gram is one ``np.searchsorted`` per length. A table holds every window of a padded file
that ends at a predicted position (and the all-BOS windows, which are contexts only).

A model depends on the data only through its highest-order counts: a lower-order n-gram's
continuation count (the number of distinct symbols seen before it) is the number of distinct
n-grams one symbol longer that end with it, because padding gives every window a left
neighbour. So :func:`kn_statistics` derives everything else from the top counts and the
tables, and a scenario's model follows from the base's counts minus the removed files' plus
the added files' (see ``ngram.NgramFastPath``), through the same arithmetic as a plain fit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numba
import numpy as np

from datalever.errors import DataleverError
from datalever.tasks.code.files import TokenFiles

#: Discounts used where Chen & Goodman's estimate is undefined or outside ``(0, r)`` (a
#: count of counts is zero, as in small corpora): ``D_r = r / 2``, the middle of that range.
#: At 0 a context could leave no mass to lower orders (unseen symbols would get probability
#: 0); at ``r`` an n-gram seen ``r`` times would be no likelier than one never seen.
FALLBACK_DISCOUNTS = (0.0, 0.5, 1.0, 1.5)
#: Keys are ``id × S + symbol`` in int64: tables larger than this cannot be keyed.
MAX_KEY = 2**62


def eos_code(vocab_size: int) -> int:
    """The code of the end-of-file symbol: predicted like a token."""
    return vocab_size


def bos_code(vocab_size: int) -> int:
    """The code of the beginning-of-file padding: context only, never predicted."""
    return vocab_size + 1


#: Below one key per this many possible ids, :func:`distinct` sorts the keys; at or above, it
#: marks them in an array over every id, which costs the table's size but no sort.
SPARSE_KEYS = 32


def distinct(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for ids in ``[0, size)``. A scenario's changed
    ids are many (a fifth of a corpus struck) but bounded by its tables, so marking them in
    one pass over the ids beats sorting them: the same two arrays, in O(size + len(keys))."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) * SPARSE_KEYS < size:
        return np.unique(keys, return_inverse=True)
    seen = np.zeros(size, dtype=bool)
    seen[keys] = True
    ids = np.flatnonzero(seen)
    slot = np.empty(size, dtype=np.int64)  # only the slots of ``ids`` are ever read
    slot[ids] = np.arange(len(ids), dtype=np.int64)
    return ids, slot[keys]


def net_change(gone: np.ndarray, new: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids (increasing) whose count changes when the occurrences ``gone`` leave and ``new``
    arrive (ids in ``[0, size)``, repeated once per occurrence), and by how much."""
    ids, at = distinct(np.concatenate([gone, new]), size)
    change = np.bincount(at[len(gone) :], minlength=len(ids))
    change -= np.bincount(at[: len(gone)], minlength=len(ids))
    moved = change != 0
    return ids[moved], change[moved].astype(np.int64)


def ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])``, without the loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(stops, dtype=np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)


@dataclass(frozen=True)
class Padded:
    """Files padded end to end: ``symbols`` (int64), each symbol's ``depth`` (its position in
    its padded file: a window of length ``j`` ending there lies in the file when
    ``depth >= j - 1``) and the ``predicted`` positions (tokens and EOS, in file order)."""

    symbols: np.ndarray
    depth: np.ndarray
    predicted: np.ndarray


def pad(files: TokenFiles, order: int, vocab_size: int) -> Padded:
    """``files`` padded for a model of ``order`` over ``vocab_size`` tokens."""
    lengths = np.diff(np.asarray(files.offsets, dtype=np.int64))
    tokens = np.asarray(files.tokens[files.offsets[0] : files.offsets[-1]], dtype=np.int64)
    if len(tokens) and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(
            f"token codes must lie in 0..{vocab_size - 1} (the model's vocabulary), "
            f"got {int(tokens.min())}..{int(tokens.max())}"
        )
    n_files = len(lengths)
    sizes = lengths + order
    starts = np.zeros(n_files + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    symbols = np.full(int(starts[-1]), bos_code(vocab_size), dtype=np.int64)
    file_of_token = np.repeat(np.arange(n_files, dtype=np.int64), lengths)
    # Before file i's tokens come ``order`` extra symbols per earlier file and its own BOS.
    symbols[np.arange(len(tokens)) + order * file_of_token + (order - 1)] = tokens
    symbols[starts[1:] - 1] = eos_code(vocab_size)
    depth = np.arange(len(symbols), dtype=np.int64) - np.repeat(starts[:-1], sizes)
    return Padded(symbols, depth, np.flatnonzero(depth >= order - 1))


@dataclass(frozen=True)
class NgramTables:
    """The n-grams of every length ``j = 1 .. order`` (index 0 of each tuple is unused).

    ``sorted_keys[j]`` and ``sorted_ids[j]``: the keys in increasing order and the id of
    each, for lookups; by id, ``keys[j]`` (the n-gram's key), ``context[j]`` (the id of its
    first ``j - 1`` symbols) and ``suffix[j]`` (the id of its last ``j - 1``). Ids are dense
    from 0; tables are read-only and shared by the models of every scenario that adds no new
    n-gram.
    """

    order: int
    vocab_size: int
    sorted_keys: tuple[np.ndarray, ...]
    sorted_ids: tuple[np.ndarray, ...]
    keys: tuple[np.ndarray, ...]
    context: tuple[np.ndarray, ...]
    suffix: tuple[np.ndarray, ...]

    @classmethod
    def empty(cls, order: int, vocab_size: int) -> NgramTables:
        none = tuple(np.zeros(0, dtype=np.int64) for _ in range(order + 1))
        return cls(order, vocab_size, none, none, none, none, none)

    @property
    def width(self) -> int:
        """``S``, the number of symbols (tokens, EOS and BOS): the multiplier of keys."""
        return self.vocab_size + 2

    def size(self, j: int) -> int:
        """The number of n-grams of length ``j`` (one empty 0-gram)."""
        return 1 if j == 0 else len(self.keys[j])

    def find(self, j: int, keys: np.ndarray) -> np.ndarray:
        """The ids of the ``j``-grams with ``keys``, ``-1`` for those not in the table."""
        table = self.sorted_keys[j]
        if len(table) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(table, keys), len(table) - 1)
        return np.where(table[at] == keys, self.sorted_ids[j][at], -1)

    def children(self, j: int, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``j``-grams that extend each of ``contexts`` (``(j - 1)``-gram ids), as the
        index of the context and the last symbol: a context's extensions are one run of the
        sorted keys."""
        table, width = self.sorted_keys[j], self.width
        lo = np.searchsorted(table, contexts * width)
        hi = np.searchsorted(table, (contexts + 1) * width)
        which = np.repeat(np.arange(len(contexts), dtype=np.int64), hi - lo)
        return which, table[ranges(lo, hi)] % width


def extend_tables(tables: NgramTables, padded: Padded) -> tuple[NgramTables, np.ndarray]:
    """``tables`` with every n-gram of ``padded`` that they lack (new ids after the old ones)
    and the id of the top-order n-gram at each predicted position of ``padded``.

    A plain fit extends empty tables; a fast path extends the base's with the added files.
    """
    n, width = tables.order, tables.width
    symbols, depth = padded.symbols, padded.depth
    grown = {name: list(getattr(tables, name)) for name in ("sorted_keys", "sorted_ids")}
    keys_by_id, context, suffix = list(tables.keys), list(tables.context), list(tables.suffix)
    previous = np.zeros(len(symbols), dtype=np.int64)  # the empty 0-gram everywhere
    for j in range(1, n + 1):
        if j > 1 and (len(keys_by_id[j - 1]) + 1) * width >= MAX_KEY:
            raise DataleverError(
                f"The corpus has too many distinct {j - 1}-grams to key its {j}-grams.",
                "use a lower order or fewer files.",
            )
        at = np.flatnonzero(depth >= j - 1)
        keys = symbols[at] if j == 1 else previous[at - 1] * width + symbols[at]
        ids = tables.find(j, keys)
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            new_keys, first, inverse = np.unique(
                keys[missing], return_index=True, return_inverse=True
            )
            new_ids = tables.size(j) + np.arange(len(new_keys), dtype=np.int64)
            ids[missing] = new_ids[inverse]
            place = np.searchsorted(tables.sorted_keys[j], new_keys)
            grown["sorted_keys"][j] = np.insert(tables.sorted_keys[j], place, new_keys)
            grown["sorted_ids"][j] = np.insert(tables.sorted_ids[j], place, new_ids)
            keys_by_id[j] = np.concatenate([tables.keys[j], new_keys])
            context[j] = np.concatenate([tables.context[j], new_keys // width])
            suffix[j] = np.concatenate([tables.suffix[j], previous[at[missing[first]]]])
        current = np.full(len(symbols), -1, dtype=np.int64)
        current[at] = ids
        previous = current
    extended = NgramTables(
        n,
        tables.vocab_size,
        tuple(grown["sorted_keys"]),
        tuple(grown["sorted_ids"]),
        tuple(keys_by_id),
        tuple(context),
        tuple(suffix),
    )
    return extended, previous[padded.predicted]


#: From how many rows a take from a patched array reads through a slot map (one pass over
#: the array's rows, then one gather) rather than searching the patched rows for each.
LARGE_TAKE = 4096


@dataclass(frozen=True)
class Patched:
    """An array of ``size`` rows: ``base`` (rows past its end are 0) with the rows ``ids``
    (sorted, distinct) replaced by ``values``. A scenario's statistics are the base's with the
    few rows its delta changes patched, so a scenario costs its delta, not the tables."""

    base: np.ndarray
    size: int
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def take(self, index: np.ndarray) -> np.ndarray:
        """The rows at ``index`` (non-negative, below ``size``), as a new array."""
        base = self.base
        if len(base) == self.size:
            out = base[index]
        else:
            out = np.zeros((len(index), *base.shape[1:]), dtype=base.dtype)
            inside = index < len(base)
            out[inside] = base[index[inside]]
        if len(self.ids):
            if len(index) >= LARGE_TAKE:  # judging: many rows, read through a slot map
                at = self._slots[index]
                hit = at >= 0
            else:
                at = np.minimum(np.searchsorted(self.ids, index), len(self.ids) - 1)
                hit = self.ids[at] == index
            out[hit] = self.values[at[hit]]
        return out

    @functools.cached_property
    def _slots(self) -> np.ndarray:
        """For every row, its place among the patched rows (-1: not patched): built once per
        array, so scoring a fold's held-out positions reads patches without a search."""
        slots = np.full(self.size, -1, dtype=np.int64)
        slots[self.ids] = np.arange(len(self.ids))
        return slots

    def patched(self, ids: np.ndarray, values: np.ndarray) -> Patched:
        """This (unpatched) array with the rows ``ids`` set to ``values``."""
        return Patched(self.base, self.size, ids, values)

    def grown(self, size: int) -> Patched:
        """This (unpatched) array, ``size`` rows long."""
        return Patched(self.base, size)

    def dense(self) -> np.ndarray:
        out = np.zeros((self.size, *self.base.shape[1:]), dtype=self.base.dtype)
        out[: len(self.base)] = self.base
        if len(self.ids):
            out[self.ids] = self.values
        return out


def discounts(count_of_counts: np.ndarray) -> np.ndarray:
    """``[0, D1, D2, D3+]`` of one order from its counts of counts ``n_r`` (the number of
    n-grams counted ``r`` times), after Chen & Goodman (1998): ``Y = n1 / (n1 + 2 n2)`` and
    ``D_r = r - (r + 1) Y n_{r+1} / n_r``. Where that is undefined (``n1 + 2 n2 = 0`` or
    ``n_r = 0``) or outside ``(0, r)``, ``D_r`` is :data:`FALLBACK_DISCOUNTS`."""
    n = [int(c) for c in count_of_counts]
    out = np.array(FALLBACK_DISCOUNTS)
    if n[1] + 2 * n[2] == 0:
        return out
    y = n[1] / (n[1] + 2 * n[2])
    for r in (1, 2, 3):
        if n[r] > 0:
            estimate = r - (r + 1) * y * n[r + 1] / n[r]
            if 0 < estimate < r:
                out[r] = estimate
    return out


@dataclass(frozen=True)
class KNStatistics:
    """What interpolated modified Kneser–Ney needs, per order ``j`` (index 0 unused):
    ``counts[j]`` by n-gram id (raw counts at the top order, continuation counts below);
    by context id (the ``(j - 1)``-gram), ``totals[j]`` (the sum of its extensions' counts)
    and ``buckets[j]`` (how many extensions it has counted once, twice, three times or more);
    ``count_of_counts[j]`` (``[0, n1, .., n4, n5+]``) and the
    ``discounts[j]`` (``[0, D1, D2, D3+]``) they give. All integers but the discounts, so
    every path to them gives exactly the same numbers."""

    counts: tuple[Patched, ...]
    totals: tuple[Patched, ...]
    buckets: tuple[Patched, ...]
    count_of_counts: tuple[np.ndarray, ...]
    discounts: tuple[np.ndarray, ...]


def _count_of_counts(counts: np.ndarray) -> np.ndarray:
    """``[0, n1, n2, n3, n4, n5+]``: n-grams counted 0 times are left out (a scenario's
    tables may hold n-grams it lacks)."""
    out = np.bincount(np.minimum(counts, 5), minlength=6).astype(np.int64)
    out[0] = 0
    return out


def _sums(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Integer sums of ``values`` by group (through float64: exact below 2**53)."""
    return np.rint(np.bincount(groups, weights=values, minlength=n)).astype(np.int64)


def kn_statistics(tables: NgramTables, top_counts: np.ndarray) -> KNStatistics:
    """Every statistic of the model from the top-order counts, in O(table size).

    N-grams with count 0 count for nothing: a table that holds n-grams a scenario lacks gives
    the statistics of a plain fit on that scenario.
    """
    n = tables.order
    none = np.zeros(0, dtype=np.int64)
    counts: list[np.ndarray] = [none] * (n + 1)
    counts[n] = np.asarray(top_counts, dtype=np.int64)
    for j in range(n - 1, 0, -1):  # N1+(• g): the distinct (j + 1)-grams ending with g
        seen = tables.suffix[j + 1][counts[j + 1] > 0]
        counts[j] = np.bincount(seen, minlength=tables.size(j)).astype(np.int64)
    totals, buckets = [Patched(none, 0)], [Patched(none, 0)]
    count_of_counts = [np.zeros(6, dtype=np.int64)]
    for j in range(1, n + 1):
        a, context, m = counts[j], tables.context[j], tables.size(j - 1)
        totals.append(Patched(_sums(context, a, m), m))
        kinds = np.bincount(context * 4 + np.minimum(a, 3), minlength=4 * m)
        buckets.append(Patched(kinds.reshape(m, 4)[:, 1:].astype(np.int64), m))
        count_of_counts.append(_count_of_counts(a))
    return KNStatistics(
        tuple(Patched(a, len(a)) for a in counts),
        tuple(totals),
        tuple(buckets),
        tuple(count_of_counts),
        tuple(discounts(c) for c in count_of_counts),
    )


def kn_update(
    base: KNStatistics, tables: NgramTables, ids: np.ndarray, change: np.ndarray
) -> KNStatistics:
    """``base``'s statistics after the top-order counts of the n-grams ``ids`` (sorted,
    distinct) change by ``change``, in O(|ids| + the tables' context counts): the same
    numbers as :func:`kn_statistics` on the new counts. ``tables`` may extend the base's
    (n-grams of added files); ``base`` is a plain fit's statistics (nothing patched).

    An n-gram whose count appears or vanishes moves its suffix's continuation count by one,
    so each order passes its appearances and disappearances down to the next
    (:func:`_order_update`, one fused pass per order).
    """
    n = tables.order
    counts, totals, buckets = list(base.counts), list(base.totals), list(base.buckets)
    count_of_counts = list(base.count_of_counts)
    ids, change = np.asarray(ids, dtype=np.int64), np.asarray(change, dtype=np.int64)
    for j in range(n, 0, -1):
        count = base.counts[j].grown(tables.size(j))
        total = base.totals[j].grown(tables.size(j - 1))
        bucket = base.buckets[j].grown(tables.size(j - 1))
        below = tables.size(j - 1) if j > 1 else 0
        suffix = tables.suffix[j] if j > 1 else ids[:0]
        new, where, sums, kinds, moved, next_ids, next_change = _order_update(
            ids,
            change,
            count.base,
            total.base,
            bucket.base,
            tables.context[j],
            suffix,
            tables.size(j - 1),
            below,
        )
        counts[j] = count.patched(ids, new)
        totals[j] = total.patched(where, sums)
        buckets[j] = bucket.patched(where, kinds)
        count_of_counts[j] = base.count_of_counts[j] + moved
        ids, change = next_ids, next_change
    return KNStatistics(
        tuple(counts),
        tuple(totals),
        tuple(buckets),
        tuple(count_of_counts),
        tuple(discounts(c) for c in count_of_counts),
    )


@numba.njit(cache=True, nogil=True)
def _group(keys, size):
    """:func:`distinct` compiled: the sorted distinct ``keys`` (ids below ``size``) and each
    key's place among them, by sorting few keys or marking many."""
    k = keys.shape[0]
    inverse = np.empty(k, np.int64)
    if k * SPARSE_KEYS < size:
        order = np.argsort(keys)
        found = np.empty(k, np.int64)
        m = 0
        for r in range(k):
            key = keys[order[r]]
            if m == 0 or found[m - 1] != key:
                found[m] = key
                m += 1
            inverse[order[r]] = m - 1
        return found[:m].copy(), inverse
    seen = np.zeros(size, np.bool_)
    for r in range(k):
        seen[keys[r]] = True
    slot = np.empty(size, np.int64)  # read only where seen
    m = 0
    for c in range(size):
        if seen[c]:
            slot[c] = m
            m += 1
    found = np.empty(m, np.int64)
    for c in range(size):
        if seen[c]:
            found[slot[c]] = c
    for r in range(k):
        inverse[r] = slot[keys[r]]
    return found, inverse


@numba.njit(cache=True, nogil=True)
def _order_update(ids, change, counts, totals, buckets, context, suffix, n_context, n_suffix):
    """One order of :func:`kn_update`, fused: the changed n-grams' new counts; their contexts
    (sorted, distinct) with new totals and buckets; the change in counts of counts; and the
    next order's changed ids and changes (suffixes whose continuation count moves). Arrays
    past their end read as 0 (n-grams and contexts the base lacks)."""
    k = ids.shape[0]
    new = np.empty(k, np.int64)
    moved = np.zeros(6, np.int64)
    contexts = np.empty(k, np.int64)
    for i in range(k):
        old = counts[ids[i]] if ids[i] < counts.shape[0] else 0
        new[i] = old + change[i]
        moved[min(new[i], 5)] += 1
        moved[min(old, 5)] -= 1
        contexts[i] = context[ids[i]]
    moved[0] = 0  # n-grams counted 0 times count for nothing
    where, at = _group(contexts, n_context)
    m = where.shape[0]
    sums = np.zeros(m, np.int64)
    kinds = np.zeros((m, 3), np.int64)
    for p in range(m):
        c = where[p]
        if c < totals.shape[0]:
            sums[p] = totals[c]
            for b in range(3):
                kinds[p, b] = buckets[c, b]
    flipped = 0
    for i in range(k):
        p = at[i]
        old = new[i] - change[i]
        sums[p] += change[i]
        if old > 0:
            kinds[p, min(old, 3) - 1] -= 1
        if new[i] > 0:
            kinds[p, min(new[i], 3) - 1] += 1
        if (new[i] > 0) != (old > 0):
            flipped += 1
    if n_suffix == 0 or flipped == 0:
        none = np.zeros(0, np.int64)
        return new, where, sums, kinds, moved, none, none
    below = np.empty(flipped, np.int64)
    flips = np.empty(flipped, np.int64)
    q = 0
    for i in range(k):
        old = new[i] - change[i]
        if (new[i] > 0) != (old > 0):
            below[q] = suffix[ids[i]]
            flips[q] = 1 if new[i] > 0 else -1
            q += 1
    found, inverse = _group(below, n_suffix)
    net = np.zeros(found.shape[0], np.int64)
    for q in range(flipped):
        net[inverse[q]] += flips[q]
    keep = net != 0
    return new, where, sums, kinds, moved, found[keep], net[keep]
