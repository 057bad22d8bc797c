"""The code judge: scores language models on one fold's held-out files.

The held-out files, the contributor of every predicted position and the positions that end a
contributor's distinctive 4-gram are worked out once per fold, because the same fold judges
every scenario's model; each model is then asked once for probabilities and, when a metric
needs them, once for its first guesses.
"""

from __future__ import annotations

import numpy as np

from datalever.core.learner import Learner, Model
from datalever.core.task import Judge
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.metrics import MEMORISED_N, CodeMetric, PerContributor, parse_code_metric


def ngram_rows(files: TokenFiles, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every run of ``n`` tokens inside a file, as rows, with the flat position of its last
    token (runs never cross files)."""
    tokens = files.tokens
    if len(tokens) < n:
        return np.zeros((0, n), dtype=np.int64), np.zeros(0, dtype=np.int64)
    ends = np.arange(n - 1, len(tokens))
    file_of = np.repeat(np.arange(len(files)), files.lengths)
    inside = file_of[ends] == file_of[ends - (n - 1)]
    ends = ends[inside]
    rows = np.stack([tokens[ends - (n - 1 - j)] for j in range(n)], axis=1).astype(np.int64)
    return rows, ends


def distinctive_ends(train: TokenFiles, test: TokenFiles, n: int = MEMORISED_N) -> np.ndarray:
    """Flat positions in ``test`` that end an ``n``-gram found in the training files of the
    test file's own contributor and of no one else."""
    train_rows, train_ends = ngram_rows(train, n)
    test_rows, test_ends = ngram_rows(test, n)
    if not len(train_rows) or not len(test_rows):
        return np.zeros(0, dtype=np.int64)
    owner_train = np.repeat(train.contributors, train.lengths)[train_ends]
    owner_test = np.repeat(test.contributors, test.lengths)[test_ends]
    # one id per distinct n-gram over both sets
    grams, ids = np.unique(np.concatenate([train_rows, test_rows]), axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    train_ids, test_ids = ids[: len(train_rows)], ids[len(train_rows) :]
    pairs = np.unique(np.stack([train_ids, owner_train], axis=1), axis=0)
    n_owners = np.bincount(pairs[:, 0], minlength=len(grams))
    sole = np.full(len(grams), -1, dtype=np.int64)
    single = n_owners[pairs[:, 0]] == 1
    sole[pairs[single, 0]] = pairs[single, 1]
    return test_ends[sole[test_ids] == owner_test]


class CodeJudge(Judge):
    """Judges language models against one fold's held-out files."""

    def __init__(
        self, train: TokenFiles, test: TokenFiles, metrics: list[str], n_contributors: int
    ) -> None:
        parsed = [parse_code_metric(m) for m in metrics]
        self.metrics: dict[str, CodeMetric] = {m.name: m for m in parsed}
        self.test = test
        # every group mask is over the dataset's contributors, including any with no files here
        self.n_contributors = n_contributors
        self.k = max((m.needs_top_k for m in parsed), default=0)
        # predicted positions: each file's tokens, then its end of file
        lengths = test.lengths + 1
        self.owner = np.repeat(test.contributors, lengths).astype(np.int64)
        self.truth = test.predicted()
        self.memorised = None
        if "memorisation" in self.metrics:
            ends = distinctive_ends(train, test)
            # a flat token position p of file f is predicted row p + f (one EOS per file before)
            file_of = np.repeat(np.arange(len(test)), test.lengths)
            self.memorised = ends + file_of[ends]

    def _sum(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        owner = self.owner if rows is None else self.owner[rows]
        return np.bincount(owner, weights=values, minlength=self.n_contributors)

    def evaluate(self, model: Model, learner: Learner) -> dict[str, PerContributor]:
        out: dict[str, PerContributor] = {}
        count = self._sum(np.ones(len(self.owner)))
        if {"bits_per_token", "perplexity"} & self.metrics.keys():
            bits = self._sum(-np.asarray(model.log2_prob(self.test)))  # type: ignore[attr-defined]
            for name in ("bits_per_token", "perplexity"):
                if name in self.metrics:
                    out[name] = PerContributor(self.metrics[name], bits, count)
        if self.k:
            k = min(self.k, self.test.vocab_size + 1)  # no more guesses than symbols
            guesses = np.asarray(model.top_k(self.test, k))  # type: ignore[attr-defined]
            hits = guesses == self.truth[:, None]
            if "top1" in self.metrics:
                out["top1"] = PerContributor(self.metrics["top1"], self._sum(hits[:, 0]), count)
            if "top5" in self.metrics:
                out["top5"] = PerContributor(
                    self.metrics["top5"], self._sum(hits.any(axis=1)), count
                )
            if self.memorised is not None:
                first = hits[:, 0]
                rows = self.memorised
                # the n-gram's last n − 1 tokens are all first guesses
                done = np.ones(len(rows), dtype=bool)
                for back in range(MEMORISED_N - 1):
                    done &= first[rows - back]
                out["memorisation"] = PerContributor(
                    self.metrics["memorisation"],
                    self._sum(done.astype(np.float64), rows),
                    self._sum(np.ones(len(rows)), rows),
                )
        return out
