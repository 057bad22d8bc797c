"""The experiment spec: a TOML file validated before anything runs.

Example (see ``examples/`` for complete ones)::

    [data]
    dataset = "movielens-100k"

    [protocol]
    kind = "data-strikes"      # or "holdout", "temporal", "leave-one-out"

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
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from datalever.errors import DataleverError
from datalever.tasks import parse_metric, task_of_data

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


#: Limits that keep a spec's work and memory sane; past them a spec is refused before anything
#: runs (a typo such as ``samples = 1000000000`` would otherwise run for years).
MAX_SPEC_BYTES = 1_000_000
MAX_SAMPLES = 10_000
MAX_SEED = 2**63 - 1
MAX_TEXT = 1_000
#: The most scenarios one spec may plan (the Data Strikes sweep made about 20,000 fits);
#: ``DATALEVER_MAX_SCENARIOS`` raises it for a deliberate giant sweep.
MAX_SCENARIOS = 200_000


class _Strict(BaseModel):
    """Strict types: no booleans or strings where numbers belong, no floats for integers, no
    infinite or NaN numbers, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class DataSpec(_Strict):
    dataset: str = Field(
        min_length=1, max_length=4096, description="A catalogue name (movielens-100k) or a path."
    )
    columns: dict[str, str] | None = Field(
        default=None,
        description="For CSV/Parquet: our column name → the file's (user, item, rating for "
        "ratings; label, contributor, features or text for labelled examples).",
    )
    vectoriser: str | None = Field(
        default=None,
        max_length=40,
        exclude_if=lambda v: v is None,
        description="How a text column becomes features: hashing or hashing:N.",
    )

    layout: Literal["repositories", "owners"] | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A folder of code: each subfolder a repository (repositories), or owners "
        "holding repositories (owners); one contributor per repository or owner.",
    )
    tokens: str | None = Field(
        default=None,
        max_length=60,
        exclude_if=lambda v: v is None,
        description="Code: how source becomes tokens, e.g. py-tokenize-v1:str16:comments.",
    )

    @field_validator("tokens")
    @classmethod
    def _known_scheme(cls, text: str | None) -> str | None:
        from datalever.tasks.code.tokens import TokenScheme

        return text if text is None else _validated(TokenScheme.parse, text)

    @field_validator("vectoriser")
    @classmethod
    def _known_vectoriser(cls, name: str | None) -> str | None:
        from datalever.tasks.classify.data import vectoriser_features

        return name if name is None else _validated(vectoriser_features, name)


class ProtocolSpec(_Strict):
    kind: Literal["data-strikes", "holdout", "temporal", "leave-one-out"] = "data-strikes"
    folds: int = Field(default=5, ge=2, le=20, description="Data Strikes folds.")
    run_folds: int | None = Field(
        default=None, ge=1, le=20, description="Run only the first N folds (quick looks)."
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Holdout share.")
    relevance_threshold: float = Field(default=4.0, ge=-1e6, le=1e6)
    list_length: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Top-N list length (holdout, temporal, leave-one-out).",
    )
    # Left out of the spec's content when not given, so run ids and scenario keys of specs
    # written before these existed do not change.
    cutoff: int | float | str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Temporal: records at or after this time are held out (seconds since "
        "1970, or a date such as 1998-03-01).",
    )
    quantile: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        exclude_if=lambda v: v is None,
        description="Temporal: the cutoff as this quantile of the timestamps (default 0.8).",
    )

    @field_validator("cutoff")
    @classmethod
    def _readable_cutoff(cls, cutoff: int | float | str | None) -> int | float | str | None:
        from datalever.protocols import cutoff_seconds

        if isinstance(cutoff, str):
            if len(cutoff) > 60:
                raise ValueError("the cutoff must be a short date or a number")
            _validated(cutoff_seconds, cutoff)
        elif isinstance(cutoff, int) and abs(cutoff) > 2**62:
            raise ValueError("the cutoff is beyond any time a dataset can hold")
        return cutoff

    @model_validator(mode="after")
    def _temporal_options(self) -> ProtocolSpec:
        """A cutoff or a quantile only with the temporal protocol, and not both."""
        given = [k for k in ("cutoff", "quantile") if getattr(self, k) is not None]
        if given and self.kind != "temporal":
            raise ValueError(
                f"{' and '.join(given)} belong to the temporal protocol, not {self.kind!r}"
            )
        if len(given) == 2:
            raise ValueError("give the temporal cutoff as a time (cutoff) or a quantile, not both")
        return self

    @property
    def top_n(self) -> bool:
        """Whether the protocol judges top-N lists of unseen items (every protocol but
        data-strikes, which ranks each user's held-out ratings)."""
        return self.kind != "data-strikes"


class LearnerSpec(BaseModel):
    """A learner by name; its other keys are its parameters, checked by the learner's own
    typed config (:func:`datalever.learners.check_learner`)."""

    model_config = ConfigDict(extra="allow", strict=True)
    name: str = Field(max_length=100)

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LeverSpec(BaseModel):
    """A lever by kind; its other keys are its parameters, checked by the lever's own typed
    config (see :mod:`datalever.levers`). Parameters not given take the lever's defaults, so
    ``kind = "strike"`` and ``kind = "strike", fraction = 1.0`` are one and the same lever."""

    model_config = ConfigDict(extra="allow", strict=True)
    kind: str = Field(default="strike", max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        from datalever.levers import LEVERS

        kind = raw.get("kind", "strike") if isinstance(raw, dict) else None
        if not isinstance(kind, str) or kind not in LEVERS:
            return raw
        config = LEVERS[kind].Config
        return {"kind": "strike", **config().model_dump(), **raw}

    @model_validator(mode="after")
    def _as_checked(self) -> LeverSpec:
        """Parameters as the lever's config reads them (``fraction = 1`` is ``1.0``), so one
        lever written two ways is one lever (errors are reported by ``spec_from_dict``)."""
        from datalever.levers import LEVERS

        if self.kind in LEVERS and self.model_extra is not None:
            try:
                checked = LEVERS[self.kind].Config.check(self.kind, self.model_extra)
            except DataleverError:
                return self
            self.model_extra.update(checked.model_dump())
        return self

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CollectivesSpec(_Strict):
    """Who acts: random collectives of each size, or members of targeted groups."""

    sizes: list[float] = Field(
        default_factory=list,
        max_length=1_000,
        description="Collective sizes as fractions of the contributors, each in [0, 1].",
    )
    counts: list[int] = Field(
        default_factory=list, max_length=1_000, description="Collective sizes as numbers."
    )
    groups: list[str] = Field(
        default_factory=list,
        max_length=1_000,
        description="Targeted groups (gender:F, genre-fans:Horror, top-10%, label:7, "
        "file:ids.txt); a share `participation` of each acts.",
    )
    samples: int = Field(
        default=5, ge=1, le=MAX_SAMPLES, description="Random draws of each collective."
    )
    participation: float = Field(
        default=0.5, gt=0, le=1, description="The share of a targeted group that acts."
    )

    @field_validator("groups")
    @classmethod
    def _groups_readable(cls, groups: list[str]) -> list[str]:
        long = [g[:40] for g in groups if len(g) > MAX_TEXT or not g.strip()]
        if long:
            raise ValueError(f"groups must be short, non-blank descriptions; got {long!r}")
        return groups

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
        if any(not 0 <= c <= 10**9 for c in counts):
            raise ValueError("counts must be between zero and 1,000,000,000 users")
        return counts


class EvaluationSpec(_Strict):
    """What the models are judged on, and for whom."""

    metrics: list[str] = Field(
        default_factory=lambda: ["ndcg@10", "precision@10", "rmse"],
        min_length=1,
        max_length=50,
        description="The task family's metrics (ndcg@10, accuracy, bits_per_token, ...); the "
        "family's defaults when not given.",
    )
    groups: list[EvalGroup] = Field(
        default_factory=lambda: list(EVAL_GROUPS),
        min_length=1,
        description="Whose held-out records each metric is read over.",
    )
    reference: str = Field(
        default="item_mean",
        max_length=100,
        description="Baseline learner for the share of the gap.",
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="Level of the reported confidence intervals."
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        """Each metric once: ``NDCG@10`` and ``ndcg@10 `` are the same metric. The spelling is
        kept as written (it is part of scenario keys; results use the canonical name)."""
        from datalever.tasks import probe_metrics

        for m in metrics:
            _validated(parse_metric, m)
            if m.strip().lower() in probe_metrics():
                kind = " or ".join(probe_metrics()[m.strip().lower()])
                raise ValueError(
                    f"{m} is measured by the {kind} lever itself and stored with its results; "
                    "drop it from the metrics (a [question] may still ask about it)"
                )
        names = [parse_metric(m).name for m in metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"metrics list {', '.join(twice)} more than once (case and spaces do not count)"
            )
        return metrics

    @field_validator("groups")
    @classmethod
    def _groups_once(cls, groups: list[str]) -> list[str]:
        return list(dict.fromkeys(groups))


class QuestionSpec(_Strict):
    """Can a collective change ``metric`` by ``delta`` for ``group``?"""

    metric: str = Field(max_length=40, description="The metric the question is about.")
    delta: str = Field(
        max_length=40,
        description="-2% (relative), -0.01 (absolute), gap:50% or =0.8 (a level to reach).",
    )
    group: EvalGroup = Field(default="everyone", description="Whose metric.")
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="How sure the answer must be."
    )
    learner: str | None = Field(
        default=None, max_length=100, description="Default: the first learner."
    )

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
    name: str = Field(default="experiment", min_length=1, max_length=200)
    seed: int = Field(
        default=0, ge=0, le=MAX_SEED, description="Every random choice flows from it."
    )
    data: DataSpec
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    learners: list[LearnerSpec] = Field(min_length=1)
    lever: LeverSpec = Field(default_factory=LeverSpec, description="One lever ([lever]).")
    levers: list[LeverSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        exclude_if=lambda levers: levers is None,
        description="Several levers ([[levers]]), each acting on the same draws.",
    )
    collectives: CollectivesSpec
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    question: QuestionSpec | None = None
    folder: str | None = Field(
        default=None,
        exclude=True,
        max_length=4096,
        description="Where relative paths in the spec are taken from: the spec file's folder "
        "(set when a spec is read from a file; not part of run ids or scenario keys).",
    )

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """A spec that names no metrics or reference learner gets its task family's (those of
        recommendation are the field defaults, so recommendation specs read as they always
        did)."""
        from datalever.tasks import TASKS

        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        data = raw["data"]
        dataset, columns = data.get("dataset"), data.get("columns")
        if not isinstance(dataset, str) or not (columns is None or isinstance(columns, dict)):
            return raw
        layout = data.get("layout") if isinstance(data.get("layout"), str) else None
        task = TASKS[task_of_data(dataset, columns, layout)]
        evaluation = raw.get("evaluation", {})
        if task.name == "recommendation" or not isinstance(evaluation, dict):
            return raw
        filled = {"metrics": list(task.default_metrics), "reference": task.default_reference}
        return {**raw, "evaluation": {**filled, **evaluation}}

    @property
    def task(self) -> str:
        """The task family of the spec's data: recommendation, classification or code."""
        return task_of_data(self.data.dataset, self.data.columns, self.data.layout)

    def all_levers(self) -> list[LeverSpec]:
        """The levers the spec runs: its ``[[levers]]``, or its one ``[lever]``."""
        return list(self.levers) if self.levers else [self.lever]

    def path(self, text: str) -> Path:
        """A path written in the spec, taken from the spec's folder when relative."""
        path = Path(text).expanduser()
        return path if path.is_absolute() or self.folder is None else Path(self.folder) / path

    def stored(self) -> dict:
        """What a results store keeps of the spec: its content, and its folder when it has one
        (so a stored run still finds its relative paths)."""
        content = self.model_dump(mode="json")
        if self.levers:  # the one [lever] is the default then, not what was written
            del content["lever"]
        return content if self.folder is None else content | {"folder": self.folder}

    def run_id(self, path: str = "auto") -> str:
        """Stable id: the same spec (and fitting path) resumes the same run."""
        content = self.model_dump(mode="json")
        if path != "auto":
            content["path"] = path
        blob = json.dumps(content, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def parse_spec(text: str, source: str = "spec") -> Spec:
    """Parse and validate TOML text, turning every problem into one clear error."""
    return spec_from_dict(toml_table(text, source), source)


def toml_table(text: str, source: str = "spec") -> dict[str, Any]:
    """A spec's TOML text as a dict, before validation (overrides apply here)."""
    if len(text) > MAX_SPEC_BYTES:
        raise DataleverError(
            f"{source} is {len(text):,} characters long; a spec is at most {MAX_SPEC_BYTES:,}.",
            "give the spec file itself, not a data file.",
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DataleverError(
            f"{source} is not valid TOML: {e}.", "fix the syntax at the line it names."
        ) from None
    except RecursionError:
        raise DataleverError(
            f"{source} nests tables or arrays too deeply to read.",
            "a spec needs at most three levels; see examples/data-strikes-ml100k.toml.",
        ) from None


def _problem(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "spec"
    return f"{where}: {err['msg']}"[:300]


def spec_from_dict(raw: dict[str, Any], source: str = "spec", *, stored: bool = False) -> Spec:
    """Validate a spec given as a dictionary (as TOML parses it).

    ``stored=True`` reads back the spec of a run already in a store: limits added since it ran
    (learner parameter ranges, the plan size) do not apply, so its results stay readable."""
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)
        problems = "; ".join(_problem(err) for err in errors[:10])
        if len(errors) > 10:
            problems += f"; and {len(errors) - 10} more"
        raise DataleverError(
            f"{source} is not a valid spec ({problems}).",
            "see examples/data-strikes-ml100k.toml for a complete spec.",
        ) from None
    if not stored:
        _check_code_data(spec.data, source)
    from datalever.levers import lever_class

    spec_collectives = spec.collectives.sizes or spec.collectives.counts or spec.collectives.groups
    needs_collectives = any(
        not _brings_collectives(ls.kind, lever_class) for ls in spec.all_levers()
    )
    if needs_collectives and not spec_collectives:
        raise DataleverError(
            f"{source} names no collectives.",
            "give [collectives] sizes = [0.1, 0.5], counts = [...], or groups = [...].",
        )
    from datalever.tasks import LEARNERS, check_learner

    if isinstance(raw, dict) and "lever" in raw and "levers" in raw:
        raise DataleverError(
            f"{source} has both a [lever] table and [[levers]].",
            "give one [lever], or list every lever as [[levers]].",
        )
    labels: list[str] = []  # results are told apart by label, so labels must differ
    for lever in spec.all_levers():
        cls = lever_class(lever.kind)
        if stored:
            labels.append(lever.kind)
            continue
        cls.Config.check(lever.kind, lever.params())
        label = cls(**lever.params()).label
        if label in labels:
            raise DataleverError(
                f"{source} lists the lever {label!r} twice (or two levers whose parameters "
                "differ by less than their labels show).",
                "give each lever once.",
            )
        labels.append(label)
    if spec.levers and len(spec.levers) > 1 and spec.question is not None:
        raise DataleverError(
            f"{source} asks a [question] but runs several levers, and a question is about one.",
            "run the question's lever in a spec of its own, or drop the [question].",
        )

    q = spec.question
    if q is not None:
        names = [ls.name for ls in spec.learners]
        if q.learner is not None and q.learner not in names:
            raise DataleverError(
                f"The question names the learner {q.learner!r}, which the spec does not run.",
                f"use one of: {', '.join(names)}.",
            )
        from datalever.tasks import probe_metrics

        probed = probe_metrics().get(parse_metric(q.metric).name)
        if probed is not None:
            if not set(probed) & {lever.kind for lever in spec.all_levers()}:
                kinds = " or ".join(probed)
                raise DataleverError(
                    f"The question's metric {q.metric!r} is measured by the {kinds} lever, "
                    "which the spec does not run.",
                    f"ask about a metric of the spec, or run the {kinds} lever.",
                )
        elif parse_metric(q.metric).name not in [
            parse_metric(m).name for m in spec.evaluation.metrics
        ]:
            raise DataleverError(
                f"The question's metric {q.metric!r} is not among the spec's metrics.",
                "add it to [evaluation] metrics.",
            )

    task = spec.task
    from datalever.tasks import TASKS

    kinds = TASKS[task].protocols
    if spec.protocol.kind not in kinds:
        raise DataleverError(
            f"{source} asks for the {spec.protocol.kind} protocol, which {task} data does "
            "not have.",
            f"use one of: {', '.join(kinds)}.",
        )
    for learner in spec.learners + [LearnerSpec(name=spec.evaluation.reference)]:
        if stored:
            if learner.name not in LEARNERS:
                check_learner(learner.name, {}, task)
        else:
            check_learner(learner.name, learner.params(), task)
    names = [ls.name for ls in spec.learners]
    if len(set(names)) < len(names):
        raise DataleverError(
            f"{source} lists a learner more than once ({', '.join(sorted(set(names)))}).",
            "give each learner once; to compare settings of one learner, run one spec each.",
        )
    from datalever.tasks import probe_metrics

    asked = [q.metric] if q is not None and q.metric.strip().lower() not in probe_metrics() else []
    for metric in spec.evaluation.metrics + asked:
        try:
            parse_metric(metric, task)
        except DataleverError as e:
            raise DataleverError(f"{source}: {e.problem}", e.fix) from None
    _check_metrics_computable(spec, source)
    if not stored:
        _check_plan_size(spec, source)
    return spec


def _check_code_data(data: DataSpec, source: str) -> None:
    """A folder of code is read by its layout, never through columns; a JSON-lines table is
    read only as code, so its columns must be mapped (unmapped, it would be taken for
    ratings)."""
    from datalever.data.guard import shown
    from datalever.tasks.code.corpus import is_json_lines

    if data.layout is not None and data.columns:
        raise DataleverError(
            f"{source} reads {shown(data.dataset, 200)} as a folder of code (layout) and "
            "also maps table columns.",
            "drop columns for a folder of repositories, or drop layout for a table.",
        )
    if data.layout is None and not data.columns and is_json_lines(data.dataset):
        raise DataleverError(
            f"{source} names the JSON-lines table {shown(data.dataset, 200)} without mapping "
            "its columns; such a table holds code.",
            'give columns = {contributor = "...", path = "...", text = "..."} (the names of '
            "its fields).",
        )


def planned_scenarios(spec: Spec) -> int:
    """How many scenarios the spec plans: per learner and fold, the no-action one and every
    lever × collective × sample (the count :func:`datalever.scenarios.plan` will expand to)."""
    c = spec.collectives
    collectives = (
        len({s for s in c.sizes if s > 0})
        + len({n for n in c.counts if n > 0})
        + len(set(c.groups))
    )
    from datalever.levers import lever_class

    per_fold = 1
    for ls in spec.all_levers():
        if _brings_collectives(ls.kind, lever_class):  # its own set, once, and random ones
            per_fold += 1 + (c.samples if ls.params().get("matched", True) else 0)
        else:
            per_fold += collectives * c.samples
    n_folds = spec.protocol.folds if spec.protocol.kind == "data-strikes" else 1  # both tasks
    folds = min(n_folds, spec.protocol.run_folds or n_folds)
    return len(spec.learners) * folds * per_fold


def _brings_collectives(kind: str, lever_class) -> bool:
    """Whether the lever ``kind`` acts through collectives of its own (unknown kinds: no)."""
    try:
        return lever_class(kind).brings_collectives
    except DataleverError:
        return False


def _check_plan_size(spec: Spec, source: str) -> None:
    limit = MAX_SCENARIOS
    override = os.environ.get("DATALEVER_MAX_SCENARIOS", "").strip()
    if override.isdigit():
        limit = int(override)
    n = planned_scenarios(spec)
    if n > limit:
        raise DataleverError(
            f"{source} plans {n:,} scenarios (learners × folds × collectives × samples), more "
            f"than the limit of {limit:,}.",
            "use fewer samples, sizes or folds; to run it anyway, set DATALEVER_MAX_SCENARIOS.",
        )


def _check_metrics_computable(spec: Spec, source: str) -> None:
    """Every metric must be one that some learner of the spec can be judged on under its
    protocol (RMSE needs rating estimates under the data-strikes protocol; log-loss needs
    class probabilities)."""
    from datalever.tasks import LEARNERS, TASKS

    task = TASKS[spec.task]
    learners = [LEARNERS[ls.name] for ls in spec.learners if ls.name in LEARNERS]
    for metric in spec.evaluation.metrics:
        if any(task.computable(metric, learner, spec) for learner in learners):
            continue
        if task.name == "recommendation" and spec.protocol.kind == "holdout":
            raise DataleverError(
                f"{source} asks for {metric} under the holdout protocol, which judges top-N "
                "lists, not rating estimates.",
                "drop it, or use the data-strikes protocol.",
            )
        raise DataleverError(
            f"{source} asks for {metric}, which none of its learners "
            f"({', '.join(ls.name for ls in spec.learners)}) can be judged on: it needs "
            + ("rating estimates." if task.name == "recommendation" else "class probabilities."),
            "drop the metric, or add a learner that can be judged on it"
            + (" (such as biased_mf)." if task.name == "recommendation" else " (such as lda)."),
        )


def load_spec(path: Path) -> Spec:
    """Read and validate a spec file. Relative paths in it (a data file, ``file:`` groups) are
    taken from the spec's own folder, so a spec means the same wherever it is run from."""
    spec = parse_spec(read_spec_text(path), source=str(path))
    spec.folder = str(path.resolve().parent)
    return spec


def read_spec_text(path: Path) -> str:
    """A spec file's text, or one clear error for a missing, unreadable or binary file."""
    if not path.is_file():
        raise DataleverError(
            f"The spec file {path} does not exist or is not a file.",
            "give the path of a TOML spec, e.g. examples/data-strikes-ml100k.toml.",
        )
    try:
        return path.read_bytes()[: MAX_SPEC_BYTES + 1].decode("utf-8")
    except OSError as e:
        raise DataleverError(
            f"Cannot read the spec file {path}: {e.strerror}.", "check the path and permissions."
        ) from None
    except UnicodeDecodeError:
        raise DataleverError(
            f"The spec file {path} is not UTF-8 text (is it a binary or data file?).",
            "give a TOML spec saved as UTF-8, e.g. examples/data-strikes-ml100k.toml.",
        ) from None
