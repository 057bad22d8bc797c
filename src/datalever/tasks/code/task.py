"""The code task family: language models trained on source code, contributor by contributor.

Records are source files turned into token codes (:mod:`.tokens`, :mod:`.corpus`); learners are
the interpolated modified Kneser–Ney n-gram model (exact fast path), a small transformer (plain
fits; PyTorch extra) and the unigram reference; the protocols split each contributor's files
(:mod:`.protocols`); the metrics are per-contributor cross-entropy, completion accuracy and a
memorisation probe (:mod:`.metrics`).

Data: ``dataset = "python-stdlib"`` (the running Python's standard library, one contributor
per top-level package or module family) or ``"python-stdlib+site-packages"`` (with the
installed distributions); a JSONL/Parquet table mapped with ``columns = {contributor = ...,
path = ..., text = ...}`` (The Stack's layout); or a folder of repositories with ``layout =
"repositories"`` (one contributor per repository) or ``"owners"`` (``owner/repository``).
``tokens`` names the token scheme (default ``py-tokenize-v1:str16:comments``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from datalever.core.learner import Learner
from datalever.core.task import Dataset, Fold, Judge, Task
from datalever.tasks.code.judge import CodeJudge
from datalever.tasks.code.metrics import KINDS, CodeMetric, parse_code_metric
from datalever.tasks.code.ngram import KneserNey
from datalever.tasks.code.protocols import contributor_holdout, contributor_kfold
from datalever.tasks.code.unigram import UniformModel, Unigram

if TYPE_CHECKING:
    from datalever.spec import Spec

#: Embedded corpora: every machine has its Python's standard library.
EMBEDDED_CORPORA = ("python-stdlib", "python-stdlib+site-packages")


def _learners() -> dict[str, type[Learner]]:
    learners: dict[str, type[Learner]] = {"kneser_ney": KneserNey, "unigram": Unigram}
    try:
        from datalever.tasks.code.transformer import TransformerLM
    except ImportError:  # the module itself imports torch lazily; this guards a missing file
        return learners
    learners["transformer"] = TransformerLM
    return learners


class CodeTask(Task):
    name = "code"
    learners = _learners()
    default_metrics = ("bits_per_token", "top1", "top5")
    default_reference = "unigram"
    default_learner = "kneser_ney"
    protocols = ("data-strikes", "holdout")
    record_noun: ClassVar[str] = "file"

    def parse_metric(self, name: str) -> CodeMetric:
        return parse_code_metric(name)

    def metric_names(self) -> list[str]:
        return list(KINDS)

    def computable(self, metric: str, learner: type[Learner], spec: Spec) -> bool:
        return True

    def folds(self, spec: Spec, data: Dataset) -> list[Fold]:
        p = spec.protocol
        contributors = data.records["contributor"].to_numpy()
        if p.kind == "data-strikes":
            return contributor_kfold(contributors, p.folds, spec.seed)
        return contributor_holdout(contributors, p.test_fraction, spec.seed)

    def judge(self, spec: Spec, data: Dataset, fold: Fold) -> Judge:
        return CodeJudge(
            data.training_set(fold.train),
            data.training_set(fold.test),
            spec.evaluation.metrics,
            data.n_contributors,
        )

    def uninformed_model(self, data: Dataset, learner: Learner) -> UniformModel:
        return UniformModel(data.width)

    def export(self, spec: Spec, data: Dataset, keep: np.ndarray, folder: Path) -> Path:
        """The kept contributors' source files as ``code.jsonl`` (``contributor``, ``path``,
        ``text``, The Stack's layout), read again from where the corpus came from; a spec
        loads it with ``columns = {contributor = "contributor", path = "path", text = "text"}``.
        Files the corpus left out as unreadable are left out here too."""
        import json

        from datalever.tasks.code.corpus import folder_sources, installed_sources, table_sources

        d = spec.data
        if d.dataset in EMBEDDED_CORPORA and not d.columns and not d.layout:
            sources, _ = installed_sources(d.dataset.endswith("site-packages"))
        elif d.layout:
            by = "owner" if d.layout == "owners" else "repository"
            sources = folder_sources(spec.path(d.dataset), by)[0]
        else:
            sources = table_sources(spec.path(d.dataset), d.columns)
        kept = {str(c) for c in np.asarray(data.contributor_ids)[keep]}
        path = folder / "code.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for source in sources:
                if source.data is not None and source.contributor in kept:
                    text = source.data.decode("utf-8", "surrogateescape")
                    row = {"contributor": source.contributor, "path": source.path, "text": text}
                    out.write(json.dumps(row, ensure_ascii=True) + "\n")
        return path

    def load(self, spec: Spec) -> Dataset:
        from datalever.tasks.code.corpus import load_folder, load_stdlib, load_table
        from datalever.tasks.code.tokens import TokenScheme

        d = spec.data
        scheme = TokenScheme.parse(d.tokens) if d.tokens else None
        if d.dataset in EMBEDDED_CORPORA and not d.columns and not d.layout:
            return load_stdlib(scheme, include_site_packages=d.dataset.endswith("site-packages"))
        if d.layout:
            by = "owner" if d.layout == "owners" else "repository"
            return load_folder(spec.path(d.dataset), by, scheme=scheme)
        return load_table(spec.path(d.dataset), d.columns, scheme=scheme)
