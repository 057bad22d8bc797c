"""Leverage curves as inline SVG (matplotlib), readable at a glance: change against collective
size, one line per learner, a shaded confidence band, axes labelled with units."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, crisp, small


def leverage_curve_svg(summary: pd.DataFrame, metric: str, group: str, title: str) -> str:
    """Relative change (%) of ``metric`` for ``group`` against the share of users acting."""
    rows = summary[
        (summary["metric"] == metric)
        & (summary["eval_group"] == group)
        & (summary["collective_kind"].isin(["none", "random"]))
        & summary["count"].isna()
    ]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for learner, g in rows.groupby("learner", sort=False):
        g = g.assign(x=100 * g["size"].fillna(0.0)).sort_values("x")
        base = g["baseline"]
        y = 100 * g["change"] / base
        lo = 100 * g["change_ci_low"].fillna(g["change"]) / base
        hi = 100 * g["change_ci_high"].fillna(g["change"]) / base
        if g["x"].iloc[0] > 0:  # no action changes nothing: every curve starts at the origin
            x0 = pd.Series([0.0])
            g, y, lo, hi = (
                pd.concat([x0.to_frame("x"), g[["x"]]])["x"],
                *(pd.concat([pd.Series([0.0]), v]) for v in (y, lo, hi)),
            )
        else:
            g = g["x"]
        (line,) = ax.plot(g, y, marker="o", lw=2, label=learner)
        ax.fill_between(g, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xlabel("collective size (% of users acting)")
    ax.set_ylabel(f"change in {metric} (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if rows["learner"].nunique() > 0:
        ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]
