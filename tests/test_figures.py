"""`datalever report --figures DIR`: every plot of the HTML report as SVG, PNG and PDF files
named for what they show, valid in each format, one set per plot the HTML has."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import SMALL_SPEC

PLANT = """
name = "plant"
seed = 1

[data]
dataset = "digits"

[protocol]
kind = "holdout"

[[learners]]
name = "lda"

[lever]
kind = "plant"
target = "3"

[collectives]
sizes = [0.01, 0.05]
samples = 2

[evaluation]
metrics = ["accuracy"]
groups = ["everyone", "non-participants"]
"""


def datalever(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def stem(label: str, kind: str) -> str:
    """The file name a plot labelled "METRIC for GROUP" in the HTML is expected to have."""
    metric, group = label.split(" for ")
    return f"{kind}-{metric.replace('@', '-at-')}-{group}"


def figures_of(html: str) -> list[tuple[str, str]]:
    """(aria label, kind) of every plot in a report: leverage curves, then level curves."""
    head, _, levers = html.partition("The levers' own measures")
    labels = re.compile(r'<figure class="curve" aria-label="([^"]+)"')
    return [(a, "change") for a in labels.findall(head)] + [
        (a, "level") for a in labels.findall(levers)
    ]


def check_files(folder: Path, name: str) -> None:
    """``name`` exists as a valid SVG, PNG and PDF."""
    svg = ET.parse(folder / f"{name}.svg").getroot()
    assert svg.tag.endswith("svg") and len(list(svg.iter())) > 20
    png = (folder / f"{name}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png[-16:]
    pdf = (folder / f"{name}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-32:]


def run(text: str, folder: Path) -> Path:
    """A store holding a real run of the spec ``text``."""
    spec = folder / "spec.toml"
    spec.write_text(text)
    db = folder / "r.sqlite"
    ran = datalever("run", str(spec), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stderr
    return db


@pytest.fixture(scope="module")
def ml100k_run(tmp_path_factory, ml100k) -> Path:
    return run(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"), tmp_path_factory.mktemp("f"))


@pytest.mark.parametrize("spec_text", ["ml100k", "plant"])
def test_one_svg_png_and_pdf_per_plot_of_the_html(spec_text, tmp_path, request):
    db = request.getfixturevalue("ml100k_run") if spec_text == "ml100k" else run(PLANT, tmp_path)
    folder, html = tmp_path / "figures", tmp_path / "report.html"
    made = datalever("report", "--store", str(db), "-o", str(html), "--figures", str(folder))
    assert made.returncode == 0, made.stderr
    plots = figures_of(html.read_text())
    assert len(plots) >= (9 if spec_text == "ml100k" else 3)
    if spec_text == "plant":
        assert any(kind == "level" for _, kind in plots)  # the lever's own measure, too
    names = [stem(label, kind) for label, kind in plots]
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(f"{n}.{ext}" for n in names for ext in ("svg", "png", "pdf"))
    for name in names:
        check_files(folder, name)
        assert name in made.stdout


def test_figures_alone_write_no_html_and_refuse_what_is_not_theirs(tmp_path, ml100k_run):
    db = ml100k_run
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC)
    made = datalever("report", "--store", str(db), "--figures", "figs", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "report.html").exists()  # only what was asked for
    assert len(list((tmp_path / "figs").glob("*.pdf"))) == 9

    notes = tmp_path / "figs" / "change-rmse-everyone.png"
    notes.write_text("my notes")
    refused = datalever("report", "--store", str(db), "--figures", "figs", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "is not a PNG figure" in " ".join(refused.stderr.split())
    assert notes.read_text() == "my notes"
    refused = datalever("report", "--store", str(db), "--figures", str(spec))
    assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr
    refused = datalever("report", "--store", str(db), "--figures", str(tmp_path / "a" / "b"))
    assert refused.returncode == 2 and "does not exist" in " ".join(refused.stderr.split())
    assert not list((tmp_path / "figs").glob(".*partial"))
