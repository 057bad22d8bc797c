"""The documentation's examples run: every Python block of a page, in order, in a fresh
process and folder, as a reader would paste them. The site itself is built with
``mkdocs build --strict`` by ``.ci/run``; here the reference pages' generators are checked to
cover every field the code accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = sorted(p for p in DOCS.rglob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def test_the_pages_have_examples():
    assert {p.name for p in PAGES} >= {"getting-started.md", "strike.md", "ask.md", "code.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_example_runs(page, tmp_path):
    code = "\n\n".join(BLOCK.findall(page.read_text(encoding="utf-8")))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def test_the_reference_lists_every_parameter():
    sys.path.insert(0, str(DOCS))
    try:
        import hooks
    finally:
        sys.path.remove(str(DOCS))
    from datalever.levers import LEVERS
    from datalever.spec import EvaluationSpec, ProtocolSpec
    from datalever.tasks import LEARNERS

    spec, learners, levers = (
        hooks.spec_reference(),
        hooks.learner_reference(),
        hooks.lever_reference(),
    )
    for model in (ProtocolSpec, EvaluationSpec):
        assert all(f"| `{name}` |" in spec for name in model.model_fields)
    for name, cls in LEARNERS.items():
        assert f"#### `{name}`" in learners
        assert all(f"| `{field}` |" in learners for field in cls.Config.model_fields)
    for kind, cls in LEVERS.items():
        assert f"### `{kind}`" in levers
        assert all(f"| `{field}` |" in levers for field in cls.Config.model_fields)
    cli = hooks.cli_reference()
    assert "## `datalever run`" in cli and "## `datalever registry serve`" in cli
