"""Leverage curves as inline SVG (matplotlib), readable at a glance: change against collective
size, one line per learner, a shaded confidence band, axes labelled with units. The same
figures are written as SVG, PNG and PDF files by ``datalever report --figures``."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, crisp, small
plt.rcParams["pdf.fonttype"] = 42  # TrueType in PDFs: text stays editable in a paper
plt.rcParams["svg.hashsalt"] = "datalever"  # the same figure gives the same SVG, byte for byte

#: The file formats ``datalever report --figures`` writes, and the resolution of its PNGs.
FIGURE_FORMATS = ("svg", "png", "pdf")
PNG_DPI = 200


def svg_of(fig: Figure) -> str:
    """A figure as inline SVG (no XML prolog), closing it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


#: How each format's files begin, so an earlier figure is replaced but nothing else is.
MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "pdf": (b"%PDF-",), "svg": (b"<?xml", b"<svg")}


def _is_figure(path: Path, fmt: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(16).lstrip()
    except OSError:
        return False
    return head.startswith(MAGIC[fmt])


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """``fig`` as ``stem.svg``, ``stem.png`` and ``stem.pdf``, closing it; each written beside
    its target and moved into place, so no half-written file is left."""
    import os

    written = []
    try:
        for fmt in FIGURE_FORMATS:
            out = stem.with_name(f"{stem.name}.{fmt}")
            if out.is_dir() or (out.exists() and not _is_figure(out, fmt)):
                from datalever.errors import DataleverError

                raise DataleverError(
                    f"{out} exists and is not a {fmt.upper()} figure; it is left as it is.",
                    "give --figures an empty folder, or the folder of earlier figures.",
                )
            partial = out.with_name(f".{out.name}.partial")
            try:
                fig.savefig(partial, format=fmt, dpi=PNG_DPI if fmt == "png" else None)
                os.replace(partial, out)
            finally:
                partial.unlink(missing_ok=True)
            written.append(out)
    finally:
        plt.close(fig)
    return written


def curve_points(summary: pd.DataFrame, metric: str, group: str) -> dict[str, pd.DataFrame]:
    """Per learner, the points of its leverage curve: ``x`` (% of users acting), ``y`` (change
    in %) and its band ``lo``/``hi``. Curves for everyone and non-participants start at the
    no-action point (0, 0): with nobody acting nothing changes for them. Participants do not
    exist at size 0, so their curves start at the smallest collective measured."""
    rows = summary[
        (summary["metric"] == metric)
        & (summary["eval_group"] == group)
        & (summary["collective_kind"].isin(["none", "random"]))
        & summary["count"].isna()
    ]
    levers = sorted(set(rows["lever"]) - {"none"})
    if len(levers) > 1:  # a curve per learner and lever, each from the shared no-action point
        out = {}
        for lever in levers:
            one = curve_points(summary[summary["lever"].isin(["none", lever])], metric, group)
            out.update({f"{learner} ({lever})": points for learner, points in one.items()})
        return out
    out = {}
    for learner, g in rows.groupby("learner", sort=False):
        g = g.assign(x=100 * g["size"].fillna(0.0)).sort_values("x")
        base = g["baseline"]
        points = pd.DataFrame(
            {
                "x": g["x"],
                "y": 100 * g["change"] / base,
                "lo": 100 * g["change_ci_low"].fillna(g["change"]) / base,
                "hi": 100 * g["change_ci_high"].fillna(g["change"]) / base,
            }
        )
        if group != "participants" and (points.empty or points["x"].iloc[0] > 0):
            origin = pd.DataFrame({"x": [0.0], "y": [0.0], "lo": [0.0], "hi": [0.0]})
            points = pd.concat([origin, points])
        out[str(learner)] = points.reset_index(drop=True)
    return out


def leverage_curve_svg(
    summary: pd.DataFrame, metric: str, group: str, title: str, who: str = "users"
) -> str:
    """Relative change (%) of ``metric`` for ``group`` against the share of ``who`` acting."""
    return svg_of(leverage_curve_figure(summary, metric, group, title, who))


def leverage_curve_figure(
    summary: pd.DataFrame, metric: str, group: str, title: str, who: str = "users"
) -> Figure:
    """The figure of :func:`leverage_curve_svg`."""
    curves = curve_points(summary, metric, group)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for learner, c in curves.items():
        (line,) = ax.plot(c["x"], c["y"], marker="o", lw=2, label=learner)
        ax.fill_between(c["x"], c["lo"], c["hi"], color=line.get_color(), alpha=0.18, lw=0)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xlabel(f"collective size (% of {who} acting)")
    ax.set_ylabel(f"change in {metric} (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def level_curve_svg(summary: pd.DataFrame, metric: str, group: str, title: str) -> str:
    """The level of a lever's own metric (a planted signal's success, data leverage power)
    against the share of contributors acting, per learner and lever, with its band."""
    return svg_of(level_curve_figure(summary, metric, group, title))


def level_curve_figure(summary: pd.DataFrame, metric: str, group: str, title: str) -> Figure:
    """The figure of :func:`level_curve_svg`."""
    rows = summary[
        (summary["metric"] == metric)
        & (summary["eval_group"] == group)
        & (summary["collective_kind"] == "random")
        & summary["count"].isna()
    ]
    several = rows["lever"].nunique() > 1
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for (learner, lever), g in rows.groupby(["learner", "lever"], sort=False):
        g = g.sort_values("size")
        x = 100 * g["size"]
        label = f"{learner} ({lever})" if several else str(learner)
        (line,) = ax.plot(x, g["mean"], marker="o", lw=2, label=label)
        lo, hi = g["ci_low"].fillna(g["mean"]), g["ci_high"].fillna(g["mean"])
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
        bound = summary[
            (summary["metric"] == f"{metric}_bound")
            & (summary["learner"] == learner)
            & (summary["lever"] == lever)
            & (summary["collective_kind"] == "random")
            & summary["count"].isna()
        ].sort_values("size")
        if not bound.empty:  # what theory promises a Bayes-optimal learner
            ax.plot(
                100 * bound["size"],
                bound["mean"],
                ls="--",
                lw=1.2,
                color=line.get_color(),
                label=f"{label}: bound for a Bayes-optimal learner",
            )
    ax.set_xscale("log")
    ax.set_xlabel("collective size (% of contributors acting, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if not rows.empty:
        ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig
