"""The experiment spec: a TOML file validated before anything runs.

Example (see ``examples/`` for complete ones)::

    [data]
    dataset = "movielens-100k"

    [protocol]
    kind = "data-strikes"      # or "holdout"

    [[learners]]
    name = "biased_mf"

    [lever]
    kind = "strike"            # or "boycott"; fraction = 0.5 for a partial strike

    [collectives]
    sizes = [0.1, 0.3, 0.5]    # fractions of users; or counts = [10, 100]
    samples = 5
    groups = ["gender:F"]      # targeted groups, of which `participation` act

    [evaluation]
    metrics = ["ndcg@10", "rmse"]
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datalever.errors import DataleverError
from datalever.metrics import parse_metric

EvalGroup = Literal[
    "everyone", "participants", "non-participants", "like-participants", "non-members"
]
#: Evaluation groups: everyone the service serves; the collective; everyone else; for a targeted
#: group, its members who did not act, and the users outside the group.
EVAL_GROUPS = ("everyone", "participants", "non-participants", "like-participants", "non-members")


def _validated(parse, text: str) -> str:
    """Run a parser inside a pydantic validator, so its message lands in the spec's error."""
    try:
        parse(text)
    except DataleverError as e:
        raise ValueError(str(e)) from None
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    dataset: str = Field(description="A catalogue name (movielens-100k) or a path.")
    columns: dict[str, str] | None = Field(
        default=None, description="For CSV/Parquet: our column name → the file's."
    )


class ProtocolSpec(_Strict):
    kind: Literal["data-strikes", "holdout"] = "data-strikes"
    folds: int = Field(default=5, ge=2, le=20, description="Data Strikes folds.")
    run_folds: int | None = Field(
        default=None, ge=1, description="Run only the first N folds (quick looks)."
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Holdout share.")
    relevance_threshold: float = 4.0
    list_length: int = Field(default=10, ge=1, description="Top-N list length (holdout).")


class LearnerSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LeverSpec(_Strict):
    kind: Literal["strike", "boycott"] = "strike"
    fraction: float = Field(default=1.0, gt=0, le=1)


class CollectivesSpec(_Strict):
    sizes: list[float] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    samples: int = Field(default=5, ge=1)
    participation: float = Field(default=0.5, gt=0, le=1)

    @field_validator("sizes")
    @classmethod
    def _sizes_in_range(cls, sizes: list[float]) -> list[float]:
        bad = [s for s in sizes if not 0 <= s <= 1]
        if bad:
            raise ValueError(
                f"sizes are fractions of users and must lie in [0, 1]; got {bad}. "
                "For numbers of users use `counts`."
            )
        return sizes

    @field_validator("counts")
    @classmethod
    def _counts_positive(cls, counts: list[int]) -> list[int]:
        if any(c < 0 for c in counts):
            raise ValueError("counts must be zero or more users")
        return counts


class EvaluationSpec(_Strict):
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "precision@10", "rmse"])
    groups: list[EvalGroup] = Field(default_factory=lambda: list(EVAL_GROUPS))
    reference: str = Field(
        default="item_mean", description="Baseline learner for the share of the gap."
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="Level of the reported confidence intervals."
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        for m in metrics:
            _validated(parse_metric, m)
        return metrics


class QuestionSpec(_Strict):
    """Can a collective change ``metric`` by ``delta`` for ``group``?"""

    metric: str
    delta: str = Field(description="-2% (relative), -0.01 (absolute) or gap:50%.")
    group: EvalGroup = "everyone"
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    learner: str | None = Field(default=None, description="Default: the first learner.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        return _validated(parse_metric, metric)

    @field_validator("delta")
    @classmethod
    def _readable_delta(cls, delta: str) -> str:
        from datalever.analysis.question import parse_delta

        return _validated(parse_delta, delta)


class Spec(_Strict):
    name: str = "experiment"
    seed: int = 0
    data: DataSpec
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    learners: list[LearnerSpec] = Field(min_length=1)
    lever: LeverSpec = Field(default_factory=LeverSpec)
    collectives: CollectivesSpec
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    question: QuestionSpec | None = None

    def run_id(self, path: str = "auto") -> str:
        """Stable id: the same spec (and fitting path) resumes the same run."""
        content = self.model_dump(mode="json")
        if path != "auto":
            content["path"] = path
        blob = json.dumps(content, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def parse_spec(text: str, source: str = "spec") -> Spec:
    """Parse and validate TOML text, turning every problem into one clear error."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DataleverError(
            f"{source} is not valid TOML: {e}.", "fix the syntax at the line it names."
        ) from None
    return spec_from_dict(raw, source)


def spec_from_dict(raw: dict[str, Any], source: str = "spec") -> Spec:
    """Validate a spec given as a dictionary (as TOML parses it)."""
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors()
        )
        raise DataleverError(
            f"{source} is not a valid spec ({problems}).",
            "see examples/data-strikes-ml100k.toml for a complete spec.",
        ) from None
    if not (spec.collectives.sizes or spec.collectives.counts or spec.collectives.groups):
        raise DataleverError(
            f"{source} names no collectives.",
            "give [collectives] sizes = [0.1, 0.5], counts = [...], or groups = [...].",
        )
    from datalever.learners import check_learner

    q = spec.question
    if q is not None:
        names = [ls.name for ls in spec.learners]
        if q.learner is not None and q.learner not in names:
            raise DataleverError(
                f"The question names the learner {q.learner!r}, which the spec does not run.",
                f"use one of: {', '.join(names)}.",
            )
        if parse_metric(q.metric).name not in [
            parse_metric(m).name for m in spec.evaluation.metrics
        ]:
            raise DataleverError(
                f"The question's metric {q.metric!r} is not among the spec's metrics.",
                "add it to [evaluation] metrics.",
            )

    for learner in spec.learners + [LearnerSpec(name=spec.evaluation.reference)]:
        check_learner(learner.name, learner.params())
    names = [ls.name for ls in spec.learners]
    if len(set(names)) < len(names):
        raise DataleverError(
            f"{source} lists a learner more than once ({', '.join(sorted(set(names)))}).",
            "give each learner once; to compare settings of one learner, run one spec each.",
        )
    _check_metrics_computable(spec, source)
    return spec


def _check_metrics_computable(spec: Spec, source: str) -> None:
    """Rating metrics need rating estimates: a rating learner under the data-strikes protocol."""
    from datalever.learners import LEARNERS

    rating_metrics = [m for m in spec.evaluation.metrics if parse_metric(m).needs_ratings]
    if rating_metrics and spec.protocol.kind == "holdout":
        raise DataleverError(
            f"{source} asks for {', '.join(rating_metrics)} under the holdout protocol, which "
            "judges top-N lists, not rating estimates.",
            "drop them, or use the data-strikes protocol.",
        )
    raters = [ls.name for ls in spec.learners if LEARNERS[ls.name].predicts_ratings]
    if len(rating_metrics) == len(spec.evaluation.metrics) and not raters:
        raise DataleverError(
            f"{source} asks only for {', '.join(rating_metrics)}, but none of its learners "
            "estimates ratings.",
            "add a ranking metric such as ndcg@10, or a rating learner such as biased_mf.",
        )


def load_spec(path: Path) -> Spec:
    if not path.is_file():
        raise DataleverError(
            f"The spec file {path} does not exist.",
            "give the path of a TOML spec, e.g. examples/data-strikes-ml100k.toml.",
        )
    return parse_spec(path.read_text(), source=str(path))
