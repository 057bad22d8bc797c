"""The HTML report opened in a real headless browser (Debian's Chromium, driven by Playwright):
the answer sentence and the leverage curves must be visible to a person."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from datalever.analysis import summarise
from datalever.report import render_summary, summary_records
from datalever.report.html import headline, normalised_rows, table_notes
from datalever.report.plots import curve_points
from datalever.spec import parse_spec
from tests.conftest import SMALL_SPEC

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUESTION = """
[question]
metric = "ndcg@10"
delta = "-1%"
learner = "item_mean"
"""


def datalever(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "1000"}  # one answer sentence, one line
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory, ml100k) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("report")
    spec = tmp / "spec.toml"
    spec.write_text(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1") + QUESTION)
    db = tmp / "r.sqlite"
    ran = datalever("run", str(spec), "--store", str(db))
    assert ran.returncode == 0, ran.stderr
    answer = next(
        line for line in ran.stdout.splitlines() if line.startswith(("Yes:", "No:", "Undecided:"))
    )
    out = tmp / "report.html"
    made = datalever("report", "--store", str(db), "-o", str(out))
    assert made.returncode == 0, made.stderr
    return out, answer


def test_report_is_self_contained(report):
    html = report[0].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<svg" in html and "Provenance" in html
    assert "checksum" in html and "numpy" in html


def test_report_in_a_browser_shows_the_answer_and_a_plot(report, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    path, answer = report
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        sentence = page.locator("#answer")
        assert sentence.is_visible()
        # The sentence the command line printed is the sentence the page leads with.
        assert sentence.inner_text().split() == answer.split()
        first_plot = page.locator("figure.curve svg").first
        first_plot.scroll_into_view_if_needed()
        assert first_plot.is_visible()
        box = first_plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        assert page.locator("figure.curve").count() >= 3
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000


def synthetic_results() -> pd.DataFrame:
    """Stored results of two learners against the reference (0.76): biased_mf leads it and
    loses 0.02 under a 50 % strike; item_knn starts below it (0.75) and loses 0.05, the
    larger change. Three samples, two folds, for everyone and for participants."""
    rng = np.random.default_rng(2)
    rows = []
    for learner, base, loss in (("biased_mf", 0.80, 0.02), ("item_knn", 0.75, 0.05)):
        shared = dict(learner=learner, count=np.nan, grp=None, metric="ndcg@10", baseline=base)
        shared.update(reference=0.76, n_participants=0)
        for fold in range(2):
            rows.append(
                {**shared, "lever": "none", "collective_kind": "none", "collective": "none"}
                | {"size": np.nan, "eval_group": "everyone", "sample": 0, "fold": fold}
                | {"value": base}
            )
        for size in (0.2, 0.5):
            for sample in range(3):
                for fold in range(2):
                    for group in ("everyone", "participants"):
                        change = -loss * size / 0.5 + rng.normal(0, 0.002)
                        rows.append(
                            {**shared, "lever": "strike", "collective_kind": "random"}
                            | {"collective": f"random {size}", "size": size}
                            | {"eval_group": group, "sample": sample, "fold": fold}
                            | {"value": base + change, "n_participants": 943 * size}
                        )
    return pd.DataFrame(rows)


def two_learner_spec():
    text = SMALL_SPEC.replace('name = "item_mean"', 'name = "biased_mf"').replace(
        'name = "popularity"', 'name = "item_knn"'
    )
    return parse_spec(text)


def test_headline_states_the_largest_change_over_all_learners():
    # The spec lists biased_mf first; item_knn changes more, and the headline must say so.
    summary = summarise(synthetic_results())
    sentence = headline(summary, two_learner_spec())
    knn = summary[(summary["learner"] == "item_knn") & (summary["size"] == 0.5)]
    pct = knn[knn["eval_group"] == "everyone"]["change_pct"].iloc[0]
    assert "item_knn's ndcg@10" in sentence and f"{pct:+.2f} %" in sentence
    assert "over 2 learners" in sentence and "50 % of users" in sentence
    assert "t CI" in sentence  # three samples: a Student-t interval, named


def test_gap_share_is_na_with_its_reason_when_the_learner_starts_below_the_reference():
    summary = summarise(synthetic_results())
    knn = summary[(summary["learner"] == "item_knn") & (summary["collective_kind"] == "random")]
    # -0.05 / (0.75 - 0.76) would read "erased 500 % of the gap"
    console = Console(record=True, width=250)
    render_summary(summary, console)
    text = console.export_text()
    lines = [line for line in text.splitlines() if "item_knn" in line and "strike" in line]
    assert lines and all("n/a" in line and "500" not in line for line in lines)
    assert "gap erased n/a for item_knn ndcg@10" in text and "starts below the reference" in text
    assert "CI t: Student-t interval" in text
    records = [r for r in summary_records(knn)]
    assert all(r["gap_share"] is None and "below" in r["gap_note"] for r in records)
    assert all(r["ci_method"] == "t" for r in records)
    html_rows = [r for r in normalised_rows(summary) if r["learner"] == "item_knn"]
    assert html_rows and all(r["gap"] == "n/a" and r["method"] == "t" for r in html_rows)
    assert any("starts below the reference" in n for n in table_notes(summary))
    mf = [r for r in normalised_rows(summary) if r["learner"] == "biased_mf"]
    assert all(r["gap"].endswith("%") for r in mf)


def test_participant_curves_start_at_the_smallest_collective_not_at_the_origin():
    summary = summarise(synthetic_results())
    for points in curve_points(summary, "ndcg@10", "participants").values():
        assert list(points["x"]) == [20.0, 50.0]
    for points in curve_points(summary, "ndcg@10", "everyone").values():
        assert list(points["x"]) == [0.0, 20.0, 50.0]
        assert (points.iloc[0][["y", "lo", "hi"]] == 0).all()
