"""The command line as a user meets it: help, data, run, results, and clear errors for bad
input (exit code 2, one paragraph, no traceback, nothing stored damaged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC


def datalever(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def assert_clear_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "Error:" in output
    for needle in needles:
        assert needle in " ".join(output.split()), output


def test_help_lists_commands():
    result = datalever("--help")
    assert result.returncode == 0
    for command in ("demo", "run", "results", "runs", "data"):
        assert command in result.stdout


def test_data_info_counts(ml100k):
    result = datalever("data", "info", "movielens-100k")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "contributors: 943" in text and "items: 1,682" in text
    assert "records: 100,000" in text and "M (670)" in text


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    return path


def test_run_then_results_in_every_format(spec_file, tmp_path, ml100k):
    db = tmp_path / "r.sqlite"
    ran = datalever("run", str(spec_file), "--store", str(db))
    assert ran.returncode == 0, ran.stderr
    assert "ndcg@10 for everyone" in ran.stdout
    as_json = json.loads(datalever("results", "--store", str(db), "--format", "json").stdout)
    learners = {r["learner"] for r in as_json}
    assert learners == {"item_mean", "popularity"}
    row = next(
        r
        for r in as_json
        if r["collective_kind"] == "random"
        and r["size"] == 0.6
        and r["metric"] == "rmse"
        and r["eval_group"] == "everyone"
    )
    assert row["change"] > 0 and row["n_samples"] == 2
    csv = datalever("results", "--store", str(db), "--format", "csv", "--metric", "ndcg@10")
    header = csv.stdout.splitlines()[0].split(",")
    assert {"mean", "ci_low", "ci_high", "change", "change_pct", "gap_share"} <= set(header)
    assert all(line.count(",ndcg@10,") == 1 for line in csv.stdout.splitlines()[1:])
    table = datalever("results", "--store", str(db))
    assert table.returncode == 0 and "gap erased" in table.stdout
    runs = datalever("runs", "--store", str(db))
    assert "small" in runs.stdout


BAD_SPECS = {
    "malformed TOML": ("[data\ndataset=", "not valid TOML"),
    "unknown learner": (
        SMALL_SPEC.replace('"popularity"', '"deep_magic"'),
        "Unknown learner 'deep_magic'",
    ),
    "unknown learner parameter": (
        SMALL_SPEC.replace('name = "popularity"', 'name = "biased_mf"\nfactors = 3'),
        "has no parameter(s) factors",
    ),
    "unknown metric": (SMALL_SPEC.replace('"rmse"', '"accuracy@k"'), "Unknown metric"),
    "size outside [0, 1]": (SMALL_SPEC.replace("0.6]", "1.5]"), "must lie in [0, 1]"),
    "group selecting nobody": (
        SMALL_SPEC.replace("gender:F", "occupation:astronaut"),
        "selects nobody",
    ),
    "a learner twice": (
        SMALL_SPEC.replace('name = "popularity"', 'name = "item_mean"'),
        "lists a learner more than once",
    ),
    "rating metric under holdout": (
        SMALL_SPEC.replace('kind = "data-strikes"', 'kind = "holdout"'),
        "under the holdout protocol",
    ),
    "no collectives": (
        SMALL_SPEC.replace("sizes = [0.0, 0.2, 0.6]", "sizes = []").replace(
            'groups = ["gender:F"]', ""
        ),
        "names no collectives",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_gets_clear_error_and_store_is_untouched(case, tmp_path, spec_file, ml100k):
    db = tmp_path / "r.sqlite"
    assert datalever("run", str(spec_file), "--store", str(db), "-q").returncode == 0
    first_run = ResultsStore(db).latest_run()
    before = ResultsStore(db).results(first_run)
    text, needle = BAD_SPECS[case]
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert_clear_error(datalever("run", str(bad), "--store", str(db)), needle)
    after = ResultsStore(db)
    assert after.results(first_run).equals(before)
    assert len(after.runs()) == 1, "a rejected spec must not leave a run behind"


def test_missing_spec_file(tmp_path):
    assert_clear_error(datalever("run", str(tmp_path / "nope.toml")), "does not exist")


def test_store_that_cannot_be_opened(spec_file, tmp_path):
    assert_clear_error(
        datalever("run", str(spec_file), "--store", str(tmp_path / "no" / "such" / "r.sqlite")),
        "does not exist",
    )
    not_a_db = tmp_path / "text.sqlite"
    not_a_db.write_text("this is not a database\n" * 100)
    assert_clear_error(
        datalever("run", str(spec_file), "--store", str(not_a_db)), "Cannot open the results store"
    )


def test_results_without_store(tmp_path):
    assert_clear_error(
        datalever("results", "--store", str(tmp_path / "none.sqlite")), "no results store"
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("person,thing,grade\n1,2,3\n", "has no column for user, item, rating"),
        ("user,item,rating\n1,2,three\n", "non-numeric"),
        ("user,item,rating\n", "no records"),
    ],
)
def test_bad_data_file(tmp_path, content, needle):
    data = tmp_path / "ratings.csv"
    data.write_text(content)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SMALL_SPEC.replace('"movielens-100k"', f'"{data}"').replace('groups = ["gender:F"]', "")
    )
    assert_clear_error(datalever("run", str(spec), "--store", str(tmp_path / "r.sqlite")), needle)


def test_unknown_dataset_name(tmp_path):
    assert_clear_error(datalever("data", "info", "movielens-7k"), "movielens-100k")


def test_ask_answers_and_reuses_stored_scenarios(tmp_path, ml100k):
    db = tmp_path / "ask.sqlite"
    args = (
        "ask",
        "--learner",
        "item_mean",
        "--delta=-1%",
        "--store",
        str(db),
        "--format",
        "json",
        "--jobs",
        "1",
    )
    first = datalever(*args)
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert answer["answer"] in {"yes", "no", "undecided"}
    assert answer["sentence"].split(":")[0].lower() == answer["answer"]
    if answer["answer"] == "yes":
        assert answer["size_low"] <= answer["size"] <= answer["size_high"]
        assert answer["users"] == round(answer["size"] * 943)
    sizes = {s["size"] for s in answer["sizes"]}
    assert {0.01, 0.1, 0.5, 0.99} <= sizes
    n_stored = ResultsStore(db).count(answer["run_id"])
    again = json.loads(datalever(*args).stdout)
    assert again["sentence"] == answer["sentence"]
    assert ResultsStore(db).count(answer["run_id"]) == n_stored  # nothing recomputed


def test_ask_bad_delta():
    assert_clear_error(datalever("ask", "--delta", "a lot"), "Cannot read the delta")


def test_results_filters_are_checked(spec_file, tmp_path, ml100k):
    db = tmp_path / "r.sqlite"
    assert datalever("run", str(spec_file), "--store", str(db), "-q").returncode == 0
    upper = datalever("results", "--store", str(db), "--metric", "NDCG@10", "--format", "csv")
    assert upper.returncode == 0 and len(upper.stdout.splitlines()) > 1
    assert_clear_error(
        datalever("results", "--store", str(db), "--group", "nobody"), "has no evaluation group"
    )


def test_ask_rejects_groups_it_cannot_evaluate():
    assert_clear_error(
        datalever("ask", "--delta=-2%", "--group", "non-members"), "only for targeted collectives"
    )
    assert_clear_error(
        datalever("ask", "--delta=-2%", "--lever", "boycott", "--group", "participants"),
        "leave the service",
    )


def test_ask_reaches_a_level_with_lever_parameters_from_flags(tmp_path):
    """`ask --lever plant --param target=3 --metric success --target 0.9`: no spec needed."""
    args = ["ask", "--data", "digits", "--lever", "plant", "--param", "target=3"]
    args += ["--metric", "success", "--target", "0.9", "--group", "non-participants"]
    args += ["--store", str(tmp_path / "a.sqlite"), "--format", "json", "--jobs", "1"]
    out = datalever(*args)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["delta"] == "=0.9" and answer["score_unit"] == "metric"
    assert answer["answer"] == "yes" and "brings success to 0.9" in answer["sentence"]
    # a level is reached from below: sizes that reach it score at least 0
    reached = [s for s in answer["sizes"] if s["decision"] == "reaches"]
    assert reached and all(s["low"] >= 0 for s in reached)
    assert_clear_error(
        datalever("ask", "--delta=-1%", "--target", "0.9"), "--delta and --target both"
    )
    assert_clear_error(
        datalever("ask", "--delta=-1%", "--param", "target"), "Cannot read the lever parameter"
    )
    assert_clear_error(datalever(*args[:6], "--param", "anchors=lots", *args[6:]), "anchors")
