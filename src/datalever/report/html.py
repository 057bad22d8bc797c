"""The HTML report: one self-contained file (inline SVG and CSS, no network) with the answer
in a sentence, leverage curves with confidence bands, normalised views, the targeted-collective
table and provenance."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from datalever.analysis import summarise
from datalever.analysis.statistics import set_back_to, targeted_effect
from datalever.analysis.summary import per_sample
from datalever.report.plots import (
    level_curve_figure,
    leverage_curve_figure,
    save_figure,
    svg_of,
)
from datalever.report.terminal import CI_METHODS, footnotes
from datalever.spec import Spec
from datalever.store import ResultsStore
from datalever.tasks import parse_metric, task_of

PACKAGES = ("datalever", "numpy", "scipy", "pandas", "numba", "sqlalchemy", "matplotlib")


@dataclass
class ReportInputs:
    run_id: str
    spec: Spec
    results: pd.DataFrame
    answer: str | None
    n_planned: int
    checksum: str


def headline(summary: pd.DataFrame, spec: Spec) -> str:
    """A sentence for runs without a question: the largest relative change measured in the
    spec's first metric for everyone, over every learner and random collective, naming the
    learner and the collective it belongs to."""
    metric = parse_metric(spec.evaluation.metrics[0]).name
    rows = summary[
        (summary["metric"] == metric)
        & (summary["eval_group"] == "everyone")
        & (summary["collective_kind"] == "random")
        & summary["change_pct"].notna()
    ]
    if rows.empty:
        return "No collective action has been measured in this run yet."
    row = rows.loc[rows["change_pct"].abs().idxmax()]
    who = (
        f"{100 * row['size']:.3g} % of users"
        if pd.notna(row["size"])
        else f"{int(row['count'])} users"
    )
    ci = ""
    if pd.notna(row["change_ci_low"]):
        lo, hi = (100 * row[c] / row["baseline"] for c in ("change_ci_low", "change_ci_high"))
        level = f"{100 * spec.evaluation.confidence:g} %"
        method = f"{row['ci_method']} " if isinstance(row.get("ci_method"), str) else ""
        ci = f" ({level} {method}CI {lo:+.2f} % to {hi:+.2f} %)"
    n = rows["learner"].nunique()
    over = f"over {n} learners" if n > 1 else f"for {row['learner']}"
    return (
        f"Largest change measured in {metric} for everyone, {over}: a {row['lever']} by {who} "
        f"changes {row['learner']}'s {metric} by {row['change_pct']:+.2f} %{ci}, "
        f"from {row['baseline']:.4f} to {row['mean']:.4f}."
    )


def _fmt(x, pattern: str = "{:.4f}") -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else pattern.format(x)


def by_lever(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each lever with the shared no-action rows, and a suffix naming the lever
    for labels ("" when the run has one lever), so no table mixes two levers' rows."""
    levers = sorted(set(frame["lever"]) - {"none"})
    if len(levers) <= 1:
        return [("", frame)]
    return [(f" ({lever})", frame[frame["lever"].isin(["none", lever])]) for lever in levers]


def normalised_rows(summary: pd.DataFrame) -> list[dict]:
    rows = summary[(summary["eval_group"] == "everyone") & (summary["collective_kind"] != "none")]
    several = rows["lever"].nunique() > 1
    return [
        {
            "learner": f"{r['learner']} ({r['lever']})" if several else r["learner"],
            "metric": r["metric"],
            "collective": r["collective"],
            "n": r["n_samples"],
            "mean": _fmt(r["mean"]),
            "ci": (f"{_fmt(r['ci_low'])} – {_fmt(r['ci_high'])}" if pd.notna(r["ci_low"]) else "–"),
            "method": r["ci_method"] if isinstance(r.get("ci_method"), str) else "–",
            "change": _fmt(r["change"], "{:+.4f}"),
            "relative": _fmt(r["change_pct"], "{:+.2f} %"),
            "gap": (
                "n/a"
                if isinstance(r.get("gap_note"), str)
                else _fmt(100 * r["gap_share"] if pd.notna(r["gap_share"]) else None, "{:.1f} %")
            ),
            "p": _fmt(r["p_value"], "{:.3g}"),
        }
        for _, r in rows.iterrows()
    ]


def table_notes(summary: pd.DataFrame) -> list[str]:
    """Footnotes of the normalised table: the interval methods used, and why a gap is n/a."""
    rows = summary[(summary["eval_group"] == "everyone") & (summary["collective_kind"] != "none")]
    return footnotes(rows)


def set_back_rows(summary: pd.DataFrame, reference: str) -> list[dict]:
    """For each learner and metric: the size at which it falls to the reference's no-action
    level, with the interval where its confidence band does."""
    out = []
    rows = summary[
        (summary["eval_group"] == "everyone")
        & summary["collective_kind"].isin(["none", "random"])
        & summary["count"].isna()
    ]
    for suffix, one in by_lever(rows):
        out.extend(_set_back_of_one_lever(one, reference, suffix))
    return out


def _set_back_of_one_lever(rows: pd.DataFrame, reference: str, suffix: str) -> list[dict]:
    out = []
    for (learner, metric), g in rows.groupby(["learner", "metric"], sort=False):
        if learner == reference or g["reference"].isna().all():
            continue
        g = g.assign(x=g["size"].fillna(0.0)).sort_values("x")
        level = float(g["reference"].iloc[0])
        lo = g["ci_low"].fillna(g["mean"]).to_numpy()
        hi = g["ci_high"].fillna(g["mean"]).to_numpy()
        point, interval = set_back_to(g["x"].to_numpy(), g["mean"].to_numpy(), lo, hi, level)
        out.append(
            {
                "learner": f"{learner}{suffix}",
                "metric": metric,
                "level": _fmt(level),
                "size": _fmt(100 * point if np.isfinite(point) else None, "{:.3g} %"),
                "interval": (
                    "–"
                    if not np.isfinite(interval.low)
                    else f"{100 * interval.low:.3g} % – "
                    + (
                        f"{100 * interval.high:.3g} %"
                        if np.isfinite(interval.high)
                        else "beyond the sizes run"
                    )
                ),
            }
        )
    return out


def matched_rows(summary: pd.DataFrame) -> list[dict]:
    """A fixed set (a group drawn once, such as a registry's opt-outs) beside the random
    collectives of the same lever with as many members: does who they are matter more or less
    than how many they are?"""
    fixed = summary[(summary["collective_kind"] == "group") & (summary["n_samples"] == 1)]
    random = summary[(summary["collective_kind"] == "random") & summary["count"].notna()]
    out = []
    for r in fixed.itertuples():
        same = random[
            (random["learner"] == r.learner)
            & (random["lever"] == r.lever)
            & (random["metric"] == r.metric)
            & (random["eval_group"] == r.eval_group)
            & (random["count"] == round(r.n_participants))
        ]
        if same.empty:
            continue
        m = same.iloc[0]
        out.append(
            {
                "learner": r.learner,
                "group": r.grp,
                "members": round(r.n_participants),
                "metric": r.metric,
                "eval_group": r.eval_group,
                "fixed": f"{_fmt(r.change, '{:+.4f}')} [{_fmt(r.change_ci_low)}, "
                f"{_fmt(r.change_ci_high)}]",
                "random": f"{_fmt(m['change'], '{:+.4f}')} [{_fmt(m['change_ci_low'])}, "
                f"{_fmt(m['change_ci_high'])}]",
                "draws": int(m["n_samples"]),
            }
        )
    return out


def targeted_rows(results: pd.DataFrame) -> list[dict]:
    """Table 1 of the Data Strikes paper: a group's non-participating members against users
    outside the group, per sample of the same scenarios."""
    rows = results[results["collective_kind"] == "group"]
    if rows.empty:
        return []
    samples = per_sample(rows)
    several = samples["lever"].nunique() > 1
    out = []
    keys = ["learner", "lever", "grp", "metric"]
    for (learner, lever, group, metric), g in samples.groupby(keys, sort=False):
        like = g[g["eval_group"] == "like-participants"].set_index("sample")["change"]
        others = g[g["eval_group"] == "non-members"].set_index("sample")["change"]
        both = like.index.intersection(others.index)
        if len(both) == 0:
            continue
        effect = targeted_effect(like[both].to_numpy(), others[both].to_numpy())
        out.append(
            {
                "learner": f"{learner} ({lever})" if several else learner,
                "group": group,
                "metric": metric,
                "n": len(both),
                "members": _fmt(effect.members_change, "{:+.4f}"),
                "others": _fmt(effect.others_change, "{:+.4f}"),
                "ratio": _fmt(effect.ratio, "{:.2f}"),
                "p": _fmt(effect.p_value, "{:.3g}"),
            }
        )
    return out


def provenance(inputs: ReportInputs) -> dict:
    results = inputs.results
    scenarios = results.drop_duplicates("key") if not results.empty else results
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return {
        "run_id": inputs.run_id,
        "dataset": inputs.spec.data.dataset,
        "checksum": inputs.checksum,
        "seed": inputs.spec.seed,
        "scenarios": f"{len(scenarios)} of {inputs.n_planned} planned",
        "paths": ", ".join(sorted(scenarios["path"].dropna().unique()))
        if "path" in scenarios
        else "",
        "compute": f"{scenarios['seconds'].sum():.1f} s" if len(scenarios) else "0 s",
        "finished": scenarios["finished_at"].max() if len(scenarios) else "",
        "versions": versions,
        "spec": json.dumps(inputs.spec.model_dump(mode="json"), indent=2),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }


#: Lever metrics plotted by level, and the groups each is read for.
LEVER_METRIC_GROUPS = {
    "success": ("non-participants", "everyone"),
    "dlp": ("everyone", "company"),
    "amplification": ("non-participants", "everyone"),
}
GROUP_TITLES = {"everyone": "everyone (fixed holdout)", "company": "company perspective"}


@dataclass
class Plot:
    """One plot of the report: what it shows, a file name that says so, and how to draw it."""

    kind: str  # "change" (leverage curve) or "level" (a lever's own measure)
    metric: str
    group: str
    draw: Callable[[], object]  # a new matplotlib figure

    @property
    def name(self) -> str:
        """A file name stem: ``change-ndcg-at-10-everyone``, ``level-success-everyone``."""
        text = f"{self.kind}-{self.metric}-{self.group}".replace("@", "-at-").lower()
        return re.sub(r"[^a-z0-9._]+", "-", text).strip("-.")

    def svg(self) -> str:
        return svg_of(self.draw())

    def as_dict(self) -> dict:
        return {"metric": self.metric, "group": self.group, "svg": self.svg()}


def change_plots(summary: pd.DataFrame, spec: Spec) -> list[Plot]:
    """Leverage curves: the change in each of the spec's metrics for each evaluation group."""
    noun = f"{task_of(spec).contributor_noun}s"
    groups = [
        g
        for g in ("everyone", "non-participants", "participants")
        if g in set(summary["eval_group"])
    ]

    def curve(m: str, g: str) -> Callable[[], object]:
        return lambda: leverage_curve_figure(
            summary, m, g, f"{m} for {g}: change vs no action", noun
        )

    return [Plot("change", m, g, curve(m, g)) for m in _metric_order(spec, summary) for g in groups]


def lever_plots(summary: pd.DataFrame) -> list[Plot]:
    """Level curves of the levers' own metrics present in the run (planted-signal success,
    data leverage power)."""
    out = []
    for metric, groups in LEVER_METRIC_GROUPS.items():
        for g in groups:
            rows = summary[(summary["metric"] == metric) & (summary["eval_group"] == g)]
            if rows.empty:
                continue
            who = GROUP_TITLES.get(g, g) if metric == "dlp" else g
            out.append(
                Plot(
                    "level",
                    metric,
                    g,
                    lambda metric=metric, g=g, who=who: level_curve_figure(
                        summary, metric, g, f"{metric} for {who}"
                    ),
                )
            )
    return out


def lever_figures(summary: pd.DataFrame) -> list[dict]:
    """The level curves of :func:`lever_plots`, as inline SVG."""
    return [p.as_dict() for p in lever_plots(summary)]


def report_plots(inputs: ReportInputs) -> list[Plot]:
    """Every plot the HTML report shows, in its order."""
    summary = summarise(inputs.results, confidence=inputs.spec.evaluation.confidence)
    return change_plots(summary, inputs.spec) + lever_plots(summary)


def dlp_rows(results: pd.DataFrame, confidence: float) -> list[dict]:
    """The Conscious Data Contribution table, formatted for the report."""
    from datalever.analysis.dlp import dlp_table, format_share

    table = dlp_table(results, confidence)
    out = []
    for (learner, lever, perspective), rows in table.groupby(
        ["learner", "lever", "perspective"], sort=False
    ):
        cells = []
        for _, r in rows.sort_values("threshold").iterrows():
            ends = r["smallest"], r["largest"]
            cells.append(
                f"{format_share(r['estimate'], *ends)} "
                f"[{format_share(r['low'], *ends)}, {format_share(r['high'], *ends)}]"
            )
        out.append({"learner": learner, "lever": lever, "perspective": perspective, "cells": cells})
    return out


def _metric_order(spec: Spec, summary: pd.DataFrame) -> list[str]:
    """Metrics in the order the spec lists them (the first is the headline)."""
    from datalever.tasks import parse_metric

    present = set(summary["metric"])
    return [
        m
        for m in dict.fromkeys(parse_metric(x).name for x in spec.evaluation.metrics)
        if m in present
    ]


def render_report(inputs: ReportInputs) -> str:
    spec = inputs.spec
    summary = summarise(inputs.results, confidence=spec.evaluation.confidence)
    figures = [p.as_dict() for p in change_plots(summary, spec)]
    env = Environment(
        loader=PackageLoader("datalever", "report/templates"),
        autoescape=select_autoescape(["html"]),
    )
    return env.get_template("report.html").render(
        title=spec.name,
        level=f"{100 * spec.evaluation.confidence:g} %",
        answer=inputs.answer or headline(summary, spec),
        is_answer=inputs.answer is not None,
        lever=", ".join(lever.kind for lever in spec.all_levers()),
        figures=figures,
        normalised=normalised_rows(summary),
        notes=table_notes(summary),
        bands=", ".join(CI_METHODS.get(m, m) for m in dict.fromkeys(summary["ci_method"].dropna()))
        or "none (one sample per size)",
        set_back=set_back_rows(summary, spec.evaluation.reference),
        reference=spec.evaluation.reference,
        targeted=targeted_rows(inputs.results),
        matched=matched_rows(summary),
        lever_figures=lever_figures(summary),
        dlp=dlp_rows(inputs.results, spec.evaluation.confidence),
        prov=provenance(inputs),
    )


def report_inputs(store: ResultsStore, run_id: str, spec: Spec, answer: str | None) -> ReportInputs:
    """What a report of the run is made of, read from the store."""
    results = store.results(run_id)
    runs = store.runs().set_index("run_id")
    checksum = store.run_checksum(run_id)
    return ReportInputs(run_id, spec, results, answer, int(runs.loc[run_id, "n_planned"]), checksum)


def write_report(
    store: ResultsStore, run_id: str, spec: Spec, answer: str | None, out: Path
) -> Path:
    inputs = report_inputs(store, run_id, spec, answer)
    out.write_text(render_report(inputs), encoding="utf-8")
    return out


def write_figures(inputs: ReportInputs, folder: Path) -> list[Path]:
    """Every plot of the report as SVG, PNG and PDF in ``folder``, named for what it shows
    (``change-ndcg-at-10-everyone.svg``); returns the files written."""
    written: list[Path] = []
    seen: dict[str, int] = {}
    for plot in report_plots(inputs):
        name = plot.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two plots whose names differ only in characters dropped
            name = f"{name}-{seen[name]}"
        written.extend(save_figure(plot.draw(), folder / name))
    return written
