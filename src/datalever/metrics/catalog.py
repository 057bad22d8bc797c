"""Capability metrics, each computed per user and aggregated over an evaluation group.

Every metric returns per-user numerators and denominators; a group's value is
``finalize(sum(num[group]) / sum(den[group]))``. That makes any evaluation group (everyone,
participants, non-participants, ...) a mask over users, with no recomputation.

Definitions follow the Data Strikes protocol (Vincent, Hecht & Sen, WWW 2019):

* ``ndcg@k``: gain ``2**r - 1``, discount ``log2(rank + 1)``, ideal order by true rating; in the
  ratings mode only users with at least ``k`` held-out ratings count.
* ``precision@k``: ratings mode: relevant items (rating >= threshold) among the top
  ``m = min(k, n_relevant)`` divided by ``m``, over users with a relevant item; top-N mode:
  held-out items among the ``k`` recommended divided by ``k``.
* ``recall@k``: relevant items in the top ``k`` divided by the user's relevant items.
* ``hits``: relevant items among the user's top ``n_relevant``, averaged over users.
* ``surfaced_hits``: the group's hits summed, as a share of all relevant held-out records of
  the fold (of everyone the service still serves), so groups add up to the total.
* ``hitrate@k``: share of users with at least one relevant item in the top ``k``.
* ``rmse``, ``mae``: over held-out records (rating learners only).

Plugins add metrics through the ``datalever.metrics`` entry-point group (see
:mod:`datalever.plugins`): a function ``per_user(ev: Evaluation, k: int | None) -> (num,
den)`` named like the metrics here (lower-case letters and ``_``), with optional attributes
``cutoff`` (True: written ``name@K``), ``higher_is_better`` (default True) and
``needs_ratings`` (default False).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datalever.errors import DataleverError
from datalever.metrics.evaluation import Evaluation


@dataclass(frozen=True)
class Metric:
    """A parsed metric name such as ``ndcg@10``."""

    kind: str
    k: int | None = None

    @property
    def name(self) -> str:
        return self.kind if self.k is None else f"{self.kind}@{self.k}"

    @property
    def higher_is_better(self) -> bool:
        if self.kind not in _KINDS:
            return bool(getattr(_plugin(self.kind), "higher_is_better", True))
        return self.kind not in ("rmse", "mae")

    @property
    def needs_ratings(self) -> bool:
        if self.kind not in _KINDS:
            return bool(getattr(_plugin(self.kind), "needs_ratings", False))
        return self.kind in ("rmse", "mae")

    @property
    def denominator_over_everyone(self) -> bool:
        return self.kind == "surfaced_hits"

    def per_user(self, ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
        if self.kind not in _KINDS:
            return _plugin_per_user(self.kind, ev, self.k)
        return _KINDS[self.kind](ev, self.k)

    def finalize(self, ratio: float) -> float:
        return float(np.sqrt(ratio)) if self.kind == "rmse" else float(ratio)


def _dcg(user: np.ndarray, rank: np.ndarray, rel: np.ndarray, k: int, n_users: int):
    top = rank <= k
    gains = (np.exp2(rel[top]) - 1.0) / np.log2(rank[top] + 1.0)
    return np.bincount(user[top], weights=gains, minlength=n_users)


def _ndcg(ev: Evaluation, k: int):
    dcg = _dcg(ev.entry_user, ev.entry_rank, ev.entry_rel, k, ev.n_users)
    idcg = _dcg(ev.ideal_user, ev.ideal_rank, ev.ideal_rel, k, ev.n_users)
    min_test = k if ev.mode == "ratings" else 1
    eligible = (ev.n_test >= min_test) & (idcg > 0)
    value = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=eligible)
    return value, eligible.astype(float)


def _precision(ev: Evaluation, k: int):
    if ev.mode == "topn":
        has = ev.n_test > 0
        return ev.hits_within(np.full(ev.n_users, k)) / k * has, has.astype(float)
    cutoff = np.minimum(k, ev.n_relevant)
    has = ev.n_relevant > 0
    value = np.divide(ev.hits_within(cutoff), cutoff, out=np.zeros(ev.n_users), where=has)
    return value, has.astype(float)


def _recall(ev: Evaluation, k: int):
    has = ev.n_relevant > 0
    hits = ev.hits_within(np.full(ev.n_users, k))
    return np.divide(hits, ev.n_relevant, out=np.zeros(ev.n_users), where=has), has.astype(float)


def _hitrate(ev: Evaluation, k: int):
    has = ev.n_relevant > 0
    return (ev.hits_within(np.full(ev.n_users, k)) > 0) * has, has.astype(float)


def _hits(ev: Evaluation, _k: None):
    return ev.hits_within(ev.n_relevant), (ev.n_test > 0).astype(float)


def _surfaced_hits(ev: Evaluation, _k: None):
    return ev.hits_within(ev.n_relevant), ev.n_relevant.astype(float)


def _errors(attr: str):
    def per_user(ev: Evaluation, _k: None):
        err = getattr(ev, attr)
        if err is None:
            raise DataleverError(
                f"The metric needs rating estimates, but this evaluation has none ({ev.mode}).",
                "use rmse/mae only with the data-strikes protocol and rating learners.",
            )
        return err, ev.n_test.astype(float)

    return per_user


_KINDS: dict[str, Callable] = {
    "ndcg": _ndcg,
    "precision": _precision,
    "recall": _recall,
    "hitrate": _hitrate,
    "hits": _hits,
    "surfaced_hits": _surfaced_hits,
    "rmse": _errors("sq_error"),
    "mae": _errors("abs_error"),
}
_WITH_K = {"ndcg", "precision", "recall", "hitrate"}
_PATTERN = re.compile(r"^([a-z_]+)(?:@(\d+))?$")
#: The largest cutoff accepted: longer lists than any catalogue has items make no sense.
MAX_CUTOFF = 100_000


def _plugins() -> dict[str, Callable]:
    """The plugins' recommendation metrics (functions whose ``task``, when set, is
    recommendation), by kind."""
    from datalever import plugins

    return {
        kind: fn
        for kind, fn in plugins.metrics().items()
        if getattr(fn, "task", "recommendation") == "recommendation" and kind not in _KINDS
    }


def _plugin(kind: str) -> Callable:
    return _plugins()[kind]


def _plugin_per_user(kind: str, ev: Evaluation, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A plugin metric's per-user numerators and denominators, checked: a plugin that returns
    something else is refused in one paragraph rather than failing inside the aggregation."""
    try:
        num, den = _plugin(kind)(ev, k)
        num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    except DataleverError:
        raise
    except Exception as e:
        raise DataleverError(
            f"The plugin metric {kind!r} failed: {type(e).__name__}: {str(e)[:200]}.",
            "fix the plugin, or drop the metric from the spec.",
        ) from None
    if num.shape != (ev.n_users,) or den.shape != (ev.n_users,):
        raise DataleverError(
            f"The plugin metric {kind!r} returned arrays of shapes {num.shape} and {den.shape}.",
            f"return (numerators, denominators), one per user: shape ({ev.n_users},) each.",
        )
    return num, den


def parse_metric(name: str) -> Metric:
    """Parse ``"ndcg@10"``-style names, with a clear error for unknown ones."""
    kinds = {**_KINDS, **_plugins()}
    with_k = _WITH_K | {k for k, fn in kinds.items() if getattr(fn, "cutoff", False)}
    known = ", ".join(f"{k}@K" if k in with_k else k for k in kinds)
    if not isinstance(name, str) or len(name) > 40:
        shown = repr(name)[:40]
        raise DataleverError(f"Unknown metric {shown}.", f"use one of: {known}.")
    m = _PATTERN.match(name.strip().lower())
    if not m or m.group(1) not in kinds:
        raise DataleverError(f"Unknown metric {name!r}.", f"use one of: {known}.")
    kind, k = m.group(1), m.group(2)
    if kind in with_k and k is None:
        raise DataleverError(f"The metric {name!r} needs a cutoff.", f"write it as {kind}@10.")
    if kind not in with_k and k is not None:
        raise DataleverError(f"The metric {kind!r} takes no cutoff.", f"write it as {kind}.")
    if k is not None and not 1 <= int(k) <= MAX_CUTOFF:
        raise DataleverError(
            f"The cutoff of {name!r} must lie between 1 and {MAX_CUTOFF:,}.", f"e.g. {kind}@10."
        )
    return Metric(kind, int(k) if k else None)


def group_value(
    metric: Metric,
    num: np.ndarray,
    den: np.ndarray,
    members: np.ndarray,
    population: np.ndarray | None = None,
) -> float:
    """The metric over the users in the boolean mask ``members`` (NaN if none qualify).

    ``population`` is everyone the service still serves (default: all users); shares such as
    ``surfaced_hits`` are taken of its total.
    """
    if metric.denominator_over_everyone:
        d = den.sum() if population is None else den[population].sum()
    else:
        d = den[members].sum()
    if d <= 0:
        return float("nan")
    return metric.finalize(num[members].sum() / d)
