"""Contribute: conscious data contribution (Vincent & Hecht, CSCW 2021).

Two firms: the *incumbent*, which trains on everyone's data, and a *competitor*. The collective
gives its data to the competitor, withholds it from the incumbent, or both:

* ``contribute``: the competitor gets the participants' records; the incumbent keeps all;
* ``strike``: the incumbent loses the participants' records; the competitor gets nothing;
* ``transfer``: both.

The competitor's own data is none, or a ``competitor_share`` of all contributors drawn once
from the spec's seed (the same for every size and sample, so its starting point is fixed).

Every scenario fits both firms' models. Results:

* the incumbent's rows are the usual ones (groups everyone, participants, non-participants);
* the competitor's rows are groups ``competitor`` (everyone's held-out records: the fixed
  holdout) and ``competitor-own`` (the held-out records of the users whose data it has: the
  company perspective), each against the competitor without any contribution;
* ``dlp`` rows give the data leverage power for the spec's first metric, for the fixed
  holdout (group ``everyone``) and the company perspective (group ``company``).

**Data leverage power** is the share of the incumbent's lead over the competitor that the
collective closes: ``DLP = 1 − (I − C) / (B − W)``, where ``B`` (best) is the incumbent with
all data and no action, ``W`` (worst) the competitor before any contribution (its own data;
with none, a model that knows nothing and scores everything alike), ``I`` the incumbent after
the action and ``C`` the competitor after it. With a contribution only (``I = B``) it is the
paper's ``(C − W) / (B − W)``; with a strike only (``C = W``) it is the share of the
incumbent's lead erased, ``(B − I) / (B − W)``; a transfer counts both, and passes 1 when the
competitor overtakes. In the fixed holdout every term is read on everyone's held-out records;
in the company perspective ``B`` on everyone's, ``I`` on those of the users the incumbent
still has, and ``C`` and ``W`` on those of the users the competitor has (everyone's, for a
competitor that has no one's data).

Users a firm has no data from are scored by a named fallback, ``newcomers``: ``popularity``
(the default: in top-N lists, items ranked by how many ratings the firm has of them; as rating
estimates, and to rank held-out ratings, each item's mean rating at the firm) or ``learner``
(the learner's own rule for newcomers: item biases for biased MF, nothing at all for EASE,
whose scores for a user without ratings are all zero). A competitor with no data at all is
the uninformed model either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.task import Dataset, Fold, MetricValues
from datalever.errors import DataleverError
from datalever.levers.base import ExtraRow, Lever, LeverConfig
from datalever.levers.strike import Strike


def _unset(value: Any) -> bool:
    return value is None


Values = dict[str, MetricValues]


class Contribute(Lever):
    """Give data to a competitor, withhold it from the incumbent, or both."""

    kind = "contribute"
    firms: ClassVar[tuple[str, ...]] = ("incumbent", "competitor")
    probe_metrics: ClassVar[dict[str, bool]] = {"dlp": True}

    class Config(LeverConfig):
        variant: Literal["contribute", "strike", "transfer"] = Field(
            "contribute",
            description="contribute: the competitor gets the data; strike: the incumbent "
            "loses it; transfer: both.",
        )
        competitor_share: float | None = Field(
            None,
            gt=0,
            lt=1,
            exclude_if=_unset,
            description="The share of all contributors whose data the competitor has of its "
            "own (default: none).",
        )

        newcomers: Literal["popularity", "learner"] = Field(
            "popularity",
            description="How a firm scores users it has no data from: popularity (the named "
            "fallback) or the learner's own rule for newcomers.",
        )

    def __init__(
        self,
        variant: str = "contribute",
        competitor_share: float | None = None,
        newcomers: str = "popularity",
    ) -> None:
        c = self.configure(variant=variant, competitor_share=competitor_share, newcomers=newcomers)
        self.variant: str = c.variant
        self.competitor_share: float | None = c.competitor_share
        self.newcomers: str = c.newcomers

    def falls_back(self) -> bool:
        return self.newcomers == "popularity"

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in super().params().items() if v is not None}

    def competitor_base(self, data: Dataset, seed: int) -> np.ndarray:
        """Which contributors' data the competitor has of its own (a boolean mask)."""
        n = data.n_contributors
        mask = np.zeros(n, dtype=bool)
        if self.competitor_share is not None:
            count = round(self.competitor_share * n)
            if count == 0:
                raise DataleverError(
                    f"A competitor share of {self.competitor_share:g} is no one of the "
                    f"{n:,} contributors of {data.name}.",
                    f"use a share of at least {1 / n:.2g}, or leave it out (no data).",
                )
            rng = np.random.default_rng([seed, 0xC0417])
            mask[rng.choice(n, size=count, replace=False)] = True
        return mask

    def check(self, data: Dataset) -> None:
        self.competitor_base(data, 0)

    def _participant_mask(self, data: Dataset, participants: np.ndarray) -> np.ndarray:
        mask = np.zeros(data.n_contributors, dtype=bool)
        mask[participants] = True
        return mask

    def _competitor_users(self, data: Dataset, participants: np.ndarray, seed: int) -> np.ndarray:
        users = self.competitor_base(data, seed)
        if self.variant != "strike":
            users = users | self._participant_mask(data, participants)
        return users

    def _keep_only(self, data: Dataset, users: np.ndarray, train_positions: np.ndarray) -> Delta:
        contributor = data.records["contributor"].to_numpy()[train_positions]
        return Delta(np.flatnonzero(~users[contributor]))

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        """The incumbent's change: the participants' records leave unless they only
        contribute."""
        if self.variant == "contribute":
            return Delta(np.zeros(0, dtype=np.int64))
        return Strike().delta(data, participants, rng, train_positions)

    def deltas(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
        seed: int = 0,
    ) -> list[Delta]:
        users = self._competitor_users(data, participants, seed)
        return [
            self.delta(data, participants, rng, train_positions),
            self._keep_only(data, users, train_positions),
        ]

    def fixed_deltas(
        self, data: Dataset, train_positions: np.ndarray, seed: int = 0
    ) -> dict[str, Delta | None]:
        base = self.competitor_base(data, seed)
        return {"worst": self._keep_only(data, base, train_positions) if base.any() else None}

    def extra_rows(
        self,
        data: Dataset,
        participants: np.ndarray,
        firms: dict[str, Values],
        fixed: dict[str, Values],
        baseline: Values,
        metrics: list[str],
        seed: int = 0,
        deltas: Sequence[Delta] = (),
        fold: Fold | None = None,
    ) -> list[ExtraRow]:
        everyone = np.ones(data.n_contributors, dtype=bool)
        acting = self._participant_mask(data, participants)
        incumbent_users = everyone if self.variant == "contribute" else ~acting
        competitor_users = self._competitor_users(data, participants, seed)
        competitor, worst, incumbent = firms["competitor"], fixed["worst"], firms["incumbent"]
        rows: list[ExtraRow] = []
        for m in metrics:
            if m not in competitor or m not in worst:
                continue
            for group, users in (("competitor", everyone), ("competitor-own", competitor_users)):
                rows.append(
                    (
                        group,
                        users,
                        m,
                        competitor[m].over(users, everyone),
                        worst[m].over(users, everyone),
                    )
                )
        m = next((m for m in metrics if m in competitor and m in worst), None)
        if m is None:
            return rows
        best = baseline[m].over(everyone, everyone)
        for group, inc_users, comp_users in (
            ("everyone", everyone, everyone),
            ("company", incumbent_users, competitor_users),
        ):
            if not comp_users.any():  # a competitor with no users: both read on everyone's
                comp_users = everyone
            w = worst[m].over(comp_users, everyone)
            gap = incumbent[m].over(inc_users, everyone) - competitor[m].over(comp_users, everyone)
            dlp = 1 - gap / (best - w) if best != w else float("nan")
            members = inc_users | comp_users
            rows.append((group, members, "dlp", dlp, 0.0))
        return rows
