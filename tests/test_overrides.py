"""Command-line overrides of spec values (``--set learners.0.n_factors=50``): parsed as TOML
values, applied before validation, refused with one paragraph naming the path and what is
there, and part of the run's identity (a run with overrides is the run of the edited spec)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datalever.errors import DataleverError
from datalever.overrides import apply_overrides, parse_override, parse_overrides, parse_value
from datalever.spec import Spec, load_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC

SPEC = SMALL_SPEC.replace("run_folds = 2", "run_folds = 1")


def datalever(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args], capture_output=True, text=True, timeout=600
    )


def clear_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """The one-paragraph error of a refused command, checked to contain ``needles``."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "Error:" in output
    flat = " ".join(output.split())
    for needle in needles:
        assert needle in flat, flat
    return flat


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("50", 50),
        ("0.1", 0.1),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("[0.1,0.5]", [0.1, 0.5]),
        ('"x"', "x"),
        ("biased_mf", "biased_mf"),
        ("gender:F", "gender:F"),
        ("-2%", "-2%"),
        ("1e3", 1000.0),
    ],
)
def test_values_are_read_as_toml_and_bare_words_as_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_paths_take_dots_and_brackets():
    assert parse_override("learners.0.n_factors=50").path == ("learners", 0, "n_factors")
    assert parse_override("learners[1].k = 7").path == ("learners", 1, "k")
    assert parse_override("learners[1].k = 7").value == 7
    assert parse_override("name=a=b").value == "a=b"  # only the first = splits


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("seed", "Cannot read the override"),
        ("=3", "Cannot read the override"),
        ("learners..k=3", "each part is a name or a list index"),
        ("lever.kind!=x", "each part is a name or a list index"),
    ],
)
def test_unreadable_overrides_are_refused(text, needle):
    with pytest.raises(DataleverError, match=needle):
        parse_override(text)


def test_a_path_given_twice_is_refused():
    with pytest.raises(DataleverError, match="gives seed twice"):
        parse_overrides(["seed=1", "seed=2"])


def raw_spec() -> dict:
    import tomllib

    return tomllib.loads(SPEC)


def test_overrides_add_keys_the_models_know_and_replace_others():
    raw = apply_overrides(
        raw_spec(),
        parse_overrides(
            [
                "learners.0.n_factors=50",  # a learner's parameter, not written in the spec
                "evaluation.confidence=0.9",
                "question.metric=ndcg@10",  # a table the spec does not have
                "collectives.sizes=[0.1, 0.5]",
                "learners[1].name=biased_mf",
            ]
        ),
        Spec,
    )
    assert raw["learners"][0] == {"name": "item_mean", "n_factors": 50}
    assert raw["learners"][1] == {"name": "biased_mf"}
    assert raw["evaluation"]["confidence"] == 0.9
    assert raw["question"] == {"metric": "ndcg@10"}
    assert raw["collectives"]["sizes"] == [0.1, 0.5]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("evaluaton.metrics=[]", ["evaluaton", "it has:", "evaluation", "learners"]),
        ("collectives.sample=3", ["collectives has no key 'sample'", "samples", "sizes"]),
        ("learners.2.k=5", ["learners is a list with 2 entries", "0 to 1"]),
        ("learners.first.k=5", ["learners is a list", "'first'"]),
        ("seed.value=5", ["seed is a single value", "not a table"]),
        ("levers.0.kind=strike", ["no levers list"]),
    ],
)
def test_unknown_paths_and_bad_indices_name_the_path_and_what_is_there(text, needles):
    with pytest.raises(DataleverError) as caught:
        apply_overrides(raw_spec(), parse_overrides([text]), Spec)
    message = str(caught.value)
    assert f"--set {parse_override(text).dotted}" in message
    for needle in needles:
        assert needle in message, message


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def test_a_run_with_overrides_is_the_run_of_the_edited_spec(spec_file, tmp_path, ml100k):
    """Overrides are stored with the run and make its id: the same as editing the file, and
    never the id of the spec without them."""
    db = tmp_path / "r.sqlite"
    sets = ["--set", "collectives.samples=1", "--set", "collectives.sizes=[0.0, 0.2]"]
    ran = datalever("run", str(spec_file), "--store", str(db), "-q", *sets)
    assert ran.returncode == 0, ran.stderr
    store = ResultsStore(db)
    (run_id,) = store.runs()["run_id"]
    stored = store.run_spec(run_id)
    assert stored["collectives"]["samples"] == 1
    assert stored["collectives"]["sizes"] == [0.0, 0.2]
    edited = tmp_path / "edited.toml"
    edited.write_text(
        SPEC.replace("samples = 2", "samples = 1").replace("[0.0, 0.2, 0.6]", "[0.0, 0.2]")
    )
    assert load_spec(edited).run_id() == run_id
    assert load_spec(spec_file).run_id() != run_id
    results = store.results(run_id)
    assert set(results["sample"]) == {0}  # one draw per collective, as overridden
    assert set(results["size"].dropna()) == {0.2}

    again = datalever("run", str(spec_file), "--store", str(db), "-q", *sets)
    assert again.returncode == 0 and "0 scenarios computed" in again.stderr  # resumed
    plain = datalever("run", str(spec_file), "--store", str(db), "-q")
    assert plain.returncode == 0
    assert len(store.runs()) == 2  # without the overrides: another run


def test_bad_overrides_on_the_command_line_get_one_paragraph(spec_file, tmp_path):
    db = tmp_path / "r.sqlite"
    clear_error(
        datalever("run", str(spec_file), "--store", str(db), "--set", "learners.3.k=5"),
        "--set learners.3.k",
        "2 entries",
    )
    clear_error(
        datalever("run", str(spec_file), "--store", str(db), "--set", "collectives.samples=0"),
        "with --set collectives.samples",
        "collectives.samples",
    )
    # a learner parameter is checked by the learner's typed config
    clear_error(
        datalever("run", str(spec_file), "--store", str(db), "--set", "learners.0.k=5"), "k"
    )
    clear_error(datalever("run", str(spec_file), "--set", "seed"), "Cannot read the override")
    clear_error(
        datalever("demo", "--dataset", "digits", "--store", str(db), "--set", "seed=-1"),
        "the demo spec with --set seed",
    )
    assert not db.exists()  # a refused run creates no store


def test_ask_takes_overrides_of_its_spec(tmp_path):
    spec = tmp_path / "q.toml"
    spec.write_text(
        """
name = "q"
[data]
dataset = "digits"
[protocol]
kind = "holdout"
[[learners]]
name = "lda"
[lever]
kind = "strike"
[collectives]
sizes = [0.5]
[question]
metric = "accuracy"
delta = "-1%"
"""
    )
    db = tmp_path / "a.sqlite"
    common = ["--spec", str(spec), "--store", str(db), "--format", "json", "--jobs", "1"]
    out = datalever("ask", *common, "--max-minutes", "0.1", "--set", "seed=11")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert ResultsStore(db).run_spec(answer["run_id"])["seed"] == 11
    clear_error(datalever("ask", *common, "--set", "question.metrc=rmse"), "metrc", "delta")
