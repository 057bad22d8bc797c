"""The HTML report opened in a real headless browser (Debian's Chromium, driven by Playwright):
the answer sentence and the leverage curves must be visible to a person."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
