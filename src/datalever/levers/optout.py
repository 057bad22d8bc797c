"""Opt-out: the contributors a consent registry actually reserved leave the training data.

Where other levers act through collectives drawn by size, this one brings its own: the set the
registry reserved for a purpose in a dataset, as consent stood at a moment (``as_of``), taken
once; and beside it, unless ``matched = false``, random collectives of the same size. So a
report can say whether honouring the real opt-outs costs the model more or less than losing as
many contributors at random, for everyone and for the opted-out contributors' own held-out
data. What they do is a strike: every record they hold leaves the training data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from datalever.collectives import Collective
from datalever.core.delta import Delta
from datalever.core.task import Dataset
from datalever.errors import DataleverError
from datalever.levers.base import Lever, LeverConfig
from datalever.levers.strike import Strike
from datalever.registry.purposes import PURPOSES


class OptOut(Lever):
    """Remove the registry's reserved contributors; compare with random sets as large."""

    kind = "optout"
    brings_collectives = True

    class Config(LeverConfig):
        registry: str | None = Field(
            None,
            max_length=2000,
            description="The registry: a SQLite file (relative to the spec), sqlite:///PATH or "
            "postgresql://USER@HOST/DB; none: the registry in the user data folder.",
        )
        purpose: Literal[PURPOSES] = Field(  # type: ignore[valid-type]
            "train-ai", description="The purpose asked about (an AIPREF category)."
        )
        as_of: str | None = Field(
            None,
            max_length=64,
            description="The moment consent is read as of (ISO 8601; none: now).",
            json_schema_extra={"accepts": "an ISO 8601 time such as 2026-06-01T00:00:00Z"},
        )
        dataset: str | None = Field(
            None,
            max_length=200,
            description="The dataset's name in the registry (none: the data's own name).",
        )
        matched: bool = Field(
            True, description="Also strike random sets as large as the reserved set."
        )

        @field_validator("as_of")
        @classmethod
        def _a_time(cls, as_of: str | None) -> str | None:
            if as_of is not None:
                try:
                    datetime.fromisoformat(as_of)
                except ValueError:
                    example = "2026-06-01T00:00:00Z"
                    raise ValueError(f"must be an ISO 8601 time, e.g. {example}") from None
            return as_of

    def __init__(
        self,
        registry: str | None = None,
        purpose: str = "train-ai",
        as_of: str | None = None,
        dataset: str | None = None,
        matched: bool = True,
    ) -> None:
        config = self.configure(
            registry=registry, purpose=purpose, as_of=as_of, dataset=dataset, matched=matched
        )
        self.registry: str | None = config.registry
        self.purpose: str = config.purpose
        self.as_of: str | None = config.as_of
        self.dataset: str | None = config.dataset
        self.matched: bool = config.matched

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        return Strike().delta(data, participants, rng, train_positions)

    def location(self, folder: str | None = None) -> str | None:
        """The registry's location, a relative file path taken from the spec's folder."""
        if self.registry is None or "://" in self.registry or folder is None:
            return self.registry
        path = Path(self.registry).expanduser()
        return str(path if path.is_absolute() else Path(folder) / path)

    def reserved(self, data: Dataset, folder: str | None = None):
        """The registry's reserved set over ``data``'s contributors (a ``ReservedSet``)."""
        from datalever.registry.contributors import reserved_contributors
        from datalever.registry.filter import require_registry
        from datalever.registry.registry import Registry

        if self.registry is not None and not self.registry.strip():
            require_registry(self.registry)  # blank: refused before it names the spec's folder
        require_registry(self.location(folder))
        with Registry(self.location(folder)) as registry:
            return reserved_contributors(
                registry,
                self.dataset or data.name,
                data.contributor_ids,
                self.purpose,
                self.as_of,
            )

    def collectives(
        self, data: Dataset, folder: str | None, samples: int
    ) -> list[tuple[Collective, int]]:
        """The reserved set, drawn once (it is what it is), and random sets as large, drawn
        ``samples`` times."""
        found = self.reserved(data, folder)
        codes = found.codes
        if not len(codes):
            raise DataleverError(
                f"The registry reserves no contributor of {self.dataset or data.name!r} for "
                f"{self.purpose!r} (as of {self.as_of or 'now'}, snapshot {found.snapshot}).",
                "check the dataset name the registry uses (the lever's `dataset`), the purpose "
                "and the time; contributors are the works contributor:<dataset>/<id>.",
            )
        when = f" as of {self.as_of}" if self.as_of else ""
        reserved = Collective(
            "group",
            group=f"registry: reserved {self.purpose}{when}",
            members=tuple(int(c) for c in codes),
        )
        out = [(reserved, 1)]
        if self.matched:
            out.append((Collective("random", count=len(codes)), samples))
        return out
