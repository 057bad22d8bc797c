"""Scenarios: one concrete world each — a lever applied by one drawn collective, for one
learner, on one fold — with a stable key that hashes everything that determines its result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from datalever.collectives import Collective, group_file
from datalever.core.task import Dataset
from datalever.errors import DataleverError
from datalever.levers import Lever, make_lever
from datalever.metrics.evaluation import EVALUATION_VERSION
from datalever.spec import Spec
from datalever.tasks import LEARNERS, make_learner


@dataclass(frozen=True)
class Scenario:
    learner: str
    learner_params: dict[str, Any] = field(hash=False, compare=False)
    lever: Lever
    collective: Collective
    sample: int
    fold: int
    key: str = ""

    @property
    def is_baseline(self) -> bool:
        return self.collective.kind == "none"


def group_file_digest(group: str | None, folder: str | None = None) -> str | None:
    """For a ``file:`` group, a digest of the ids in the file, so editing it changes the keys
    (the path itself is keyed as written, so moving the project changes nothing)."""
    if not group or not group.startswith("file:"):
        return None
    path = group_file(group.removeprefix("file:"), folder)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def members_digest(members: tuple[int, ...]) -> str:
    """A digest of a fixed collective's contributor codes, so another set changes the keys."""
    return hashlib.sha256(json.dumps(list(members)).encode()).hexdigest()[:16]


def scenario_key(spec: Spec, checksum: str, fields: dict[str, Any]) -> str:
    """Hash of the data, protocol, evaluation, seed and the scenario's own fields."""
    blob = json.dumps(
        {
            "data": checksum,
            "protocol": spec.protocol.model_dump(exclude={"run_folds"}),
            "evaluation": spec.evaluation.model_dump(exclude={"confidence"}),
            "seed": spec.seed,
            "evaluation_version": EVALUATION_VERSION,
            **fields,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def plan(
    spec: Spec, checksum: str, path: str = "auto", data: Dataset | None = None
) -> list[Scenario]:
    """Expand a spec into scenarios: one no-action scenario per learner and fold, then every
    lever × collective × sample. Size 0 is the no-action scenario and is not repeated. A lever
    that brings its own collectives (the registry's opt-outs) resolves them over ``data``.

    Scenarios forced onto plain fits (``path="plain"``, for checking fast paths) get keys of
    their own, so they are computed afresh rather than taken from fast-path results.
    """
    c = spec.collectives
    collectives: list[tuple[Collective, int]] = []
    for size in sorted(set(c.sizes)):
        if size > 0:
            collectives.append((Collective("random", size=size), c.samples))
    for count in sorted(set(c.counts)):
        if count > 0:
            collectives.append((Collective("random", count=count), c.samples))
    for group in dict.fromkeys(c.groups):
        collectives.append(
            (
                Collective("group", group=group, participation=c.participation, folder=spec.folder),
                c.samples,
            )
        )
    levers = [make_lever(ls.kind, ls.params()) for ls in spec.all_levers()]
    # Each collective with the levers that act through it: the spec's serve every lever that
    # brings none of its own.
    acting: dict[tuple[Collective, int], list[Lever]] = {}
    for lever in levers:
        if lever.brings_collectives:
            if data is None:
                raise DataleverError(
                    f"The lever {lever.kind!r} resolves its collectives from the data.",
                    "plan the spec with its data.",
                )
            own = lever.collectives(data, spec.folder, c.samples)
        else:
            own = collectives
        for col in own:
            acting.setdefault(col, []).append(lever)
    n_folds = spec.protocol.folds if spec.protocol.kind == "data-strikes" else 1
    folds = range(min(n_folds, spec.protocol.run_folds or n_folds))
    out = []
    for learner in spec.learners:
        params = learner.params()
        variant = make_learner(learner.name, params).key_variant()
        for fold in folds:
            # The levers of one draw side by side, so they land in one batch and share a fit
            # when they make the same change.
            jobs = [(levers[0], Collective("none"), 0)] + [
                (lever, col, s)
                for (col, n), acts in acting.items()
                for s in range(n)
                for lever in acts
            ]
            for lever, col, sample in jobs:
                described = [
                    col.kind,
                    col.size,
                    col.count,
                    col.group,
                    col.participation,
                    group_file_digest(col.group, col.folder),
                ]
                if col.members is not None:
                    described.append(members_digest(col.members))
                fields = {
                    "learner": learner.name,
                    "params": params,
                    "version": LEARNERS[learner.name].version,
                    "lever": lever.key() if col.kind != "none" else None,
                    "collective": described,
                    "sample": sample,
                    "fold": fold,
                }
                if variant is not None:
                    fields["variant"] = variant
                if path != "auto":
                    fields["path"] = path
                out.append(
                    Scenario(
                        learner.name,
                        params,
                        lever,
                        col,
                        sample,
                        fold,
                        key=scenario_key(spec, checksum, fields),
                    )
                )
    return out
