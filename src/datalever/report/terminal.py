"""Terminal tables of the summary (rich), and records for CSV / JSON export."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from datalever.analysis.statistics import BOOTSTRAP_MIN_SAMPLES

CI_METHODS = {
    "t": f"Student-t interval (fewer than {BOOTSTRAP_MIN_SAMPLES} samples)",
    "BCa": f"bias-corrected bootstrap, expanded ({BOOTSTRAP_MIN_SAMPLES} samples or more)",
    "percentile": f"percentile bootstrap, expanded ({BOOTSTRAP_MIN_SAMPLES} samples or more)",
}


def _fmt(x: float, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _size(row: pd.Series) -> str:
    if row["collective_kind"] == "none":
        return "0 (no action)"
    if row["collective_kind"] == "random":
        if not pd.isna(row["count"]):
            return f"{int(row['count'])} users"
        return f"{100 * row['size']:.4g}%"
    return escape(str(row["collective"]))


def _present(summary: pd.DataFrame, column: str) -> list[str]:
    """Distinct non-empty values of ``column`` (absent in summaries stored by older versions)."""
    if column not in summary:
        return []
    return [str(v) for v in dict.fromkeys(summary[column].dropna())]


def _gap(row: pd.Series) -> str:
    if not pd.isna(row["gap_share"]):
        return f"{round(100 * row['gap_share'], 1) + 0.0:.1f}%"
    return "n/a" if isinstance(row.get("gap_note"), str) else "–"


def footnotes(summary: pd.DataFrame) -> list[str]:
    """Lines under a summary table: which interval each method code means, and why a share of
    the gap is n/a."""
    lines = [f"CI {m}: {CI_METHODS.get(m, m)}" for m in _present(summary, "ci_method")]
    if "gap_note" in summary:
        noted = summary.dropna(subset=["gap_note"])
        for (learner, metric, note), g in noted.groupby(
            ["learner", "metric", "gap_note"], sort=False
        ):
            groups = ", ".join(dict.fromkeys(g["eval_group"]))
            lines.append(f"gap erased n/a for {learner} {metric} ({groups}): {note}")
    return lines


def render_summary(
    summary: pd.DataFrame, console: Console, title: str = "", confidence: float = 0.95
) -> None:
    """A readable table of capability change against collective size; the caption names each
    interval method and says why a gap share is n/a."""
    notes = footnotes(summary)
    table = Table(
        title=escape(title) if title else None,
        caption="\n".join(escape(n) for n in notes) or None,
        caption_justify="left",
        header_style="bold",
        show_lines=False,
    )
    for col, justify in [
        ("learner", "left"),
        ("lever", "left"),
        ("collective", "left"),
        ("group", "left"),
        ("metric", "left"),
        ("n", "right"),
        (f"mean [{100 * confidence:g}% CI]", "right"),
        ("CI", "left"),
        ("change", "right"),
        ("change %", "right"),
        ("gap erased", "right"),
    ]:
        table.add_column(col, justify=justify)
    previous = None
    for _, row in summary.iterrows():
        block = (row["learner"], row["metric"], row["eval_group"])
        if previous is not None and block != previous:
            table.add_section()
        previous = block
        ci = (
            f" [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
            if not pd.isna(row["ci_low"])
            else ""
        )
        change_pct = row["change_pct"]
        method = row.get("ci_method")
        table.add_row(
            escape(str(row["learner"])),
            escape(str(row["lever"])),
            _size(row),
            escape(str(row["eval_group"])),
            escape(str(row["metric"])),
            str(row["n_samples"]),
            f"{_fmt(row['mean'])}{ci}",
            method if isinstance(method, str) else "–",
            f"{row['change']:+.4f}" if not pd.isna(row["change"]) else "–",
            f"{change_pct:+.2f}%" if not pd.isna(change_pct) else "–",
            _gap(row),
        )
    console.print(table)


def summary_records(summary: pd.DataFrame) -> list[dict]:
    """The summary as plain records (NaN as None) for JSON."""
    clean = summary.astype(object).where(summary.notna(), None)
    return clean.to_dict(orient="records")


def render_curve(
    summary: pd.DataFrame, console: Console, metric: str, group: str = "everyone"
) -> None:
    """One compact table per metric: collective sizes down, learners across.

    Each cell is the mean over samples with its paired change against no action.
    """
    rows = summary[(summary["metric"] == metric) & (summary["eval_group"] == group)]
    if rows.empty:
        return
    levers = sorted(set(rows["lever"]) - {"none"})
    if len(levers) > 1:  # one table per lever, each beside the shared no-action row
        for lever in levers:
            render_curve(summary[summary["lever"].isin(["none", lever])], console, metric, group)
        return
    learners = list(dict.fromkeys(rows["learner"]))
    table = Table(
        title=f"{metric} for {group}, {' / '.join(levers) or 'no action'}: "
        "mean (change vs no action)",
        header_style="bold",
    )
    table.add_column("collective")
    table.add_column("samples", justify="right")
    for learner in learners:
        table.add_column(learner, justify="right")
    for label, block in rows.groupby(rows.apply(_size, axis=1), sort=False):
        cells = []
        for learner in learners:
            r = block[block["learner"] == learner]
            if r.empty:
                cells.append("–")
                continue
            r = r.iloc[0]
            pct = r["change_pct"]
            change = "" if r["collective_kind"] == "none" or pd.isna(pct) else f" ({pct:+.2f}%)"
            cells.append(f"{_fmt(r['mean'])}{change}")
        table.add_row(label, str(int(block["n_samples"].max())), *cells)
    console.print(table)


def render_groups(
    summary: pd.DataFrame, console: Console, metric: str, groups: tuple[str, ...]
) -> None:
    """One table per learner and lever: collective sizes down, evaluation groups across, so the
    change for everyone sits beside the change for the participants themselves (their own
    style, for a code model). Each cell is the mean and the paired change with its interval."""
    rows = summary[(summary["metric"] == metric) & summary["eval_group"].isin(groups)]
    for (learner, lever), block in rows[rows["lever"] != "none"].groupby(
        ["learner", "lever"], sort=False
    ):
        table = Table(
            title=f"{metric}, {learner}, {lever}: mean (change vs no action [95 % CI])",
            header_style="bold",
        )
        table.add_column("collective")
        table.add_column("samples", justify="right")
        for g in groups:
            table.add_column(g, justify="right")
        base = rows[(rows["learner"] == learner) & (rows["lever"] == "none")]
        if not base.empty:
            cells = ["–"] * len(groups)
            cells[0] = _fmt(base.iloc[0]["mean"])
            table.add_row("0 (no action)", str(int(base["n_samples"].max())), *cells)
        for label, size in block.groupby(block.apply(_size, axis=1), sort=False):
            cells = []
            for g in groups:
                r = size[size["eval_group"] == g]
                if r.empty:
                    cells.append("–")
                    continue
                r = r.iloc[0]
                interval = (
                    ""
                    if pd.isna(r["change_ci_low"])
                    else f" [{r['change_ci_low']:+.4f}, {r['change_ci_high']:+.4f}]"
                )
                cells.append(f"{_fmt(r['mean'])} ({r['change']:+.4f}{interval})")
            table.add_row(label, str(int(size["n_samples"].max())), *cells)
        console.print(table)


def render_dlp_table(table: pd.DataFrame, console: Console) -> None:
    """The Conscious Data Contribution table: per learner, lever and perspective, the smallest
    participation at which data leverage power reaches each threshold, with its interval."""
    from datalever.analysis.dlp import format_share

    if table.empty:
        return
    out = Table(
        title="Smallest participation at which data leverage power reaches a threshold "
        "(estimate [interval])",
        header_style="bold",
    )
    for name in ("learner", "lever", "perspective"):
        out.add_column(name)
    thresholds = sorted(set(table["threshold"]))
    for t in thresholds:
        out.add_column(f"DLP {t:g}", justify="right")
    for (learner, lever, perspective), rows in table.groupby(
        ["learner", "lever", "perspective"], sort=False
    ):
        cells = []
        for t in thresholds:
            r = rows[rows["threshold"] == t].iloc[0]
            ends = r["smallest"], r["largest"]
            cells.append(
                f"{format_share(r['estimate'], *ends)} "
                f"[{format_share(r['low'], *ends)}, {format_share(r['high'], *ends)}]"
            )
        out.add_row(learner, lever, perspective, *cells)
    console.print(out)
