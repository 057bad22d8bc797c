"""The example notebook runs from top to bottom (nbclient, a real kernel) and reproduces the
Data Strikes curve: its own cells assert the shape, and it leaves the curve and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebooks" / "data-strikes.ipynb"


def test_the_data_strikes_notebook_executes(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the curve was drawn
    text = "".join(o.get("text", "") for o in outputs)
    assert "nDCG@10 falls by" in text and "wrote" in text
    report = tmp_path / "data-strikes-report.html"
    assert report.stat().st_size > 10_000
    assert (tmp_path / "data-strikes.sqlite").exists()
