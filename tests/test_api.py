"""The public Python API (``import datalever as dl``) against the command line: the same run
gives the same numbers either way, and bad input is the same clear error."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest

import datalever as dl
from datalever.errors import DataleverError

SPEC = {
    "name": "api: strikes on digits",
    "seed": 3,
    "data": {"dataset": "digits"},
    "protocol": {"kind": "data-strikes", "folds": 2},
    "learners": [{"name": "lda"}],
    "lever": {"kind": "strike"},
    "collectives": {"sizes": [0.2, 0.6], "samples": 2},
    "evaluation": {"metrics": ["accuracy"], "groups": ["everyone", "participants"]},
    "question": {"metric": "accuracy", "delta": "-1%", "group": "everyone"},
}


def test_the_top_level_names_are_the_api_and_load_lazily():
    assert set(dl.__all__) >= {"run", "ask", "load_spec", "load_dataset", "open_run", "Run"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys, datalever; print('datalever.api' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"  # `import datalever` stays quick for the CLI
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dl.nope  # noqa: B018


def test_a_run_from_python_matches_the_command_line(tmp_path):
    store = tmp_path / "api.sqlite"
    seen: list[tuple[int, int]] = []
    run = dl.run(SPEC, store=store, on_progress=lambda done, todo: seen.append((done, todo)))
    assert isinstance(run, dl.Run) and run.n_computed > 0 and not run.interrupted
    assert seen and seen[-1][0] == seen[-1][1] == run.n_computed

    scenarios = run.scenarios()
    assert {"learner", "metric", "eval_group", "value"} <= set(scenarios.columns)
    summary = run.summary()
    assert set(summary["eval_group"]) == {"everyone", "participants"}

    # the same store read by the command line: identical figures
    cli = subprocess.run(
        [sys.executable, "-m", "datalever", "results", "--store", str(store), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    from_cli = pd.read_csv(io.StringIO(cli.stdout))
    numeric = [c for c in ("mean", "ci_low", "ci_high", "change") if c in summary.columns]
    assert numeric
    pd.testing.assert_frame_equal(
        summary[numeric].reset_index(drop=True),
        from_cli[numeric].reset_index(drop=True),
        check_dtype=False,
        rtol=1e-12,
    )

    again = dl.run(SPEC, store=store)  # resumes: nothing left to compute
    assert again.run_id == run.run_id and again.n_computed == 0
    assert again.n_reused == run.n_computed
    opened = dl.open_run(store)
    assert opened.run_id == run.run_id and opened.spec().name == SPEC["name"]
    assert list(dl.runs(store)["run_id"]) == [run.run_id]

    answer = run.answer()
    assert answer is not None and "accuracy" in answer
    out = run.report(tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>") and SPEC["name"] in html


def test_load_dataset_and_spec_from_every_kind_of_input(tmp_path):
    digits = dl.load_dataset("digits")
    assert digits.n_contributors == 1797
    assert dl.load_dataset({"dataset": "digits"}).checksum() == digits.checksum()
    spec = dl.load_spec(SPEC)
    assert dl.load_spec(spec) is spec
    assert dl.load_dataset(spec).checksum() == digits.checksum()
    path = tmp_path / "spec.toml"
    path.write_text(
        'name = "x"\n[data]\ndataset = "digits"\n[[learners]]\nname = "lda"\n'
        "[collectives]\nsizes = [0.5]\n"
    )
    assert dl.load_spec(path).name == "x" and dl.load_spec(str(path)).name == "x"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tmp: dl.load_spec(42), "not int"),
        (lambda tmp: dl.load_spec(tmp / "missing.toml"), "does not exist"),
        (lambda tmp: dl.load_spec({**SPEC, "lever": {"kind": "nope"}}), "nope"),
        (lambda tmp: dl.load_dataset(3.5), "not float"),
        (lambda tmp: dl.open_run(tmp / "none.sqlite"), "no results store"),
        (lambda tmp: dl.runs(tmp / "none.sqlite"), "no results store"),
        (lambda tmp: dl.run(SPEC, store=42), "not int"),
        (lambda tmp: dl.open_run(None), "not NoneType"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, call, message):
    with pytest.raises(DataleverError, match=message):
        call(tmp_path)
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates a store
