"""Regression tests for what a new user hit at the command line: flags that must override a
spec, messages that lost words in square brackets, honest answers from `ask`, relative paths,
filters that name what a run has, `run -q`, `data info --columns`, `--version`, and reports
that must never overwrite anything but a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from datalever.analysis.ask import SearchResult, Verdict
from datalever.answer import Answer, sentence
from datalever.cli import _question_spec, app
from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.spec import QuestionSpec, load_spec, parse_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC

QUESTION = '\n[question]\nmetric = "ndcg@10"\ndelta = "-2%"\n'


def invoke(*args: str, cwd: Path | None = None):
    import os

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), env={"DATALEVER_STORE": None})
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory, ml100k) -> Path:
    path = tmp_path_factory.mktemp("store") / "r.sqlite"
    spec = parse_spec(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    run_spec(spec, ResultsStore(path), data=ml100k)
    return path


# 1. ask: flags override the spec; a spec's question suffices


def test_ask_flags_override_the_spec_and_its_question_suffices(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text(SMALL_SPEC + QUESTION)
    assert _question_spec(path, {}).question.delta == "-2%"
    spec = _question_spec(path, {"delta": "-5%", "metric": "precision@10", "seed": 9})
    assert spec.question.delta == "-5%" and spec.question.metric == "precision@10"
    assert spec.seed == 9
    spec = _question_spec(path, {"learner": "ease", "lever": "boycott", "folds": 2})
    assert spec.question.learner == "ease" and "ease" in [ls.name for ls in spec.learners]
    assert spec.lever.kind == "boycott" and spec.protocol.run_folds == 2


def test_ask_needs_a_delta_from_somewhere(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text(SMALL_SPEC)
    with pytest.raises(DataleverError, match="no \\[question\\] table, and no --delta"):
        _question_spec(path, {})
    assert _question_spec(path, {"delta": "-1%"}).question.delta == "-1%"
    with pytest.raises(DataleverError, match="pass --delta"):
        _question_spec(None, {})


# 2. square brackets survive in messages and help


def test_square_brackets_are_printed_literally(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text(SMALL_SPEC)
    result = invoke("ask", "--spec", str(path), "--store", str(tmp_path / "s.sqlite"))
    assert result.exit_code == 2
    assert "has no [question] table" in " ".join(result.output.split())
    help_text = " ".join(invoke("ask", "--help").output.split())
    assert "[question] from a spec" in help_text
    missing = invoke("results", "--store", str(tmp_path / "[/]x.sqlite"))
    assert missing.exit_code == 2 and "[/]x.sqlite" in missing.output


# 4. unanswerable questions are refused before anything runs


def test_ask_refuses_a_gap_to_itself_before_running(tmp_path):
    store = tmp_path / "s.sqlite"
    result = invoke("ask", "--learner", "item_mean", "--delta=gap:50%", "--store", str(store))
    assert result.exit_code == 2 and "the lead is zero" in " ".join(result.output.split())
    assert not store.exists()


# 5. honest sentences: out of time said, a Yes names a decided size, scores in delta units


def _verdict(size: float, decision: str, mean: float) -> Verdict:
    return Verdict(size, np.full(5, mean), mean - 0.01, mean + 0.01, decision)


def _answer(result: SearchResult, delta: str = "-2%") -> Answer:
    q = QuestionSpec(metric="ndcg@10", delta=delta)
    text = sentence(q, result, 1000, "ease", "strike", "ml")
    return Answer(q, "ease", "strike", 1000, result, text, "run")


def test_a_yes_names_the_smallest_size_decided_to_reach():
    verdicts = [
        _verdict(0.1, "short", 0.01),
        _verdict(0.15, "undecided", 0.019),
        _verdict(0.2, "reaches", 0.03),
    ]
    result = SearchResult("yes", 0.02, point=0.16, low=0.1, high=0.2, verdicts=verdicts)
    answer = _answer(result)
    assert answer.text.startswith("Yes: a random collective of 20 % of users (about 200 users)")
    assert "interpolated estimate 16 %" in answer.text
    assert "time budget" not in answer.text
    payload = answer.to_dict()
    assert payload["size"] == 0.2 and payload["users"] == 200
    assert payload["estimated_threshold"] == 0.16


def test_running_out_of_time_is_said_in_the_sentence():
    verdicts = [_verdict(0.1, "short", 0.01), _verdict(0.5, "reaches", 0.05)]
    result = SearchResult("yes", 0.02, 0.3, 0.1, 0.5, verdicts, out_of_time=True)
    assert "time budget ran out" in _answer(result).text
    assert _answer(result).to_dict()["out_of_time"] is True


def test_scores_read_in_the_deltas_units():
    result = SearchResult("no", 0.02, verdicts=[_verdict(0.99, "short", 0.0123)])
    relative = _answer(result, "-2%")
    assert relative.format_score(0.0123) == "1.23 %" and relative.threshold_text == "2.00 %"
    absolute = _answer(SearchResult("no", 0.01, verdicts=result.verdicts), "-0.01")
    assert absolute.format_score(0.0123) == "0.0123"
    rows = relative.size_rows()
    assert rows[0]["users"] == 990 and rows[0]["decision"] == "short"


# 6. relative paths in a spec are the spec folder's


def test_relative_paths_resolve_from_the_spec_folder(tmp_path, ml100k):
    """A spec's relative paths are taken from its folder, wherever the command runs; they are
    kept as written, so run ids, scenario keys and draws do not depend on where the project
    lies."""
    from datalever.collectives import Collective, draw
    from datalever.engine.runner import load_spec_data
    from datalever.scenarios import plan

    users = ml100k.contributors.index[:40]
    table = ml100k.records.head(3000).copy()
    for name in ("a", "b"):
        folder = tmp_path / name / "project"
        folder.mkdir(parents=True)
        (folder / "ids.txt").write_text("\n".join(map(str, users)))
        pd_table = table.rename(columns={"contributor": "user"})
        pd_table[["user", "item", "rating"]].to_csv(folder / "ratings.csv", index=False)
        text = SMALL_SPEC.replace('"movielens-100k"', '"ratings.csv"').replace(
            '"gender:F"', '"file:ids.txt"'
        )
        (folder / "spec.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    specs = []
    import os

    old = os.getcwd()
    os.chdir(elsewhere)
    try:
        for name in ("a", "b"):
            spec = load_spec(Path("..") / name / "project" / "spec.toml")
            assert spec.data.dataset == "ratings.csv"
            assert spec.collectives.groups == ["file:ids.txt"]
            assert load_spec_data(spec).n_contributors > 0
            specs.append(spec)
    finally:
        os.chdir(old)
    a, b = specs
    assert a.run_id() == b.run_id()
    assert [s.key for s in plan(a, "c")] == [s.key for s in plan(b, "c")]
    data = load_spec_data(a)
    group = Collective("group", group="file:ids.txt", participation=0.5, folder=a.folder)
    moved = Collective("group", group="file:ids.txt", participation=0.5, folder=b.folder)
    assert (draw(group, data, 0, 1).participants == draw(moved, data, 0, 1).participants).all()
    catalogue = tmp_path / "cat.toml"
    catalogue.write_text(SMALL_SPEC)
    assert load_spec(catalogue).data.dataset == "movielens-100k"


# 7. filters name what a run has; run -q; data info --columns; --version


def test_results_filters_name_what_the_run_has(finished_store):
    result = invoke("results", "--store", str(finished_store), "--metric", "recall@5")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "has no metric 'recall@5'" in text
    assert "ndcg@10" in text and "rmse" in text
    result = invoke("results", "--store", str(finished_store), "--group", "somebody")
    assert result.exit_code == 2 and "everyone" in result.output


def test_run_quiet_still_prints_the_results(tmp_path, ml100k):
    path = tmp_path / "spec.toml"
    path.write_text(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    result = invoke("run", str(path), "--store", str(tmp_path / "s.sqlite"), "-q")
    assert result.exit_code == 0, result.output
    assert "ndcg@10 for everyone" in result.output


def test_data_info_takes_a_column_mapping(tmp_path):
    (tmp_path / "r.csv").write_text("who,what,stars\n1,10,4\n1,11,5\n2,10,3\n")
    result = invoke(
        "data", "info", str(tmp_path / "r.csv"), "--columns", "user=who,item=what,rating=stars"
    )
    assert result.exit_code == 0, result.output
    assert "contributors: 2" in " ".join(result.output.split())
    bad = invoke("data", "info", str(tmp_path / "r.csv"), "--columns", "user")
    assert bad.exit_code == 2 and "column mapping" in bad.output


def test_version():
    from datalever import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"datalever {__version__}"


# 13. reports never overwrite anything but a report


def test_report_never_overwrites_a_store_or_other_file(finished_store, tmp_path):
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(finished_store.read_bytes())
    before = copy.read_bytes()
    result = invoke("report", "--store", str(copy), "-o", str(copy))
    assert result.exit_code == 2 and "not a datalever report" in result.output
    assert copy.read_bytes() == before
    report = tmp_path / "r.html"
    assert invoke("report", "--store", str(copy), "-o", str(report)).exit_code == 0
    assert invoke("report", "--store", str(copy), "-o", str(report)).exit_code == 0  # replace
    for target, needle in ((tmp_path, "is a folder"), (copy / "r.html", "is a file")):
        result = invoke("report", "--store", str(copy), "-o", str(target))
        assert result.exit_code == 2 and needle in " ".join(result.output.split())
    assert copy.read_bytes() == before
    assert not list(tmp_path.glob(".*.partial"))


def test_results_of_a_run_with_nothing_finished_is_a_clear_error(tmp_path, ml100k):
    store = ResultsStore(tmp_path / "s.sqlite")
    spec = parse_spec(SMALL_SPEC)
    store.start_run(
        "empty", "empty", "movielens-100k", ml100k.checksum(), spec.model_dump(mode="json"), 3
    )
    result = invoke("results", "--store", str(tmp_path / "s.sqlite"), "--run", "empty")
    assert result.exit_code == 2 and "has no finished scenario" in result.output
    result = invoke(
        "report",
        "--store",
        str(tmp_path / "s.sqlite"),
        "--run",
        "empty",
        "-o",
        str(tmp_path / "r.html"),
    )
    assert result.exit_code == 2 and "has no finished scenario" in result.output
    as_json = invoke(
        "results", "--store", str(tmp_path / "s.sqlite"), "--run", "empty", "--format", "json"
    )
    assert as_json.exit_code == 2 and "has no finished scenario" in as_json.output


@pytest.mark.slow
def test_ctrl_c_stops_ask(tmp_path, ml100k):
    """Ctrl-C during `ask` stops the search (it used to carry on and answer), keeps what is
    stored and exits 130 without a traceback."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datalever",
            "ask",
            "--delta=-2%",
            "--learner",
            "item_knn",
            "--folds",
            "5",  # a search of a minute or so: biased MF's whole search takes seconds
            "--store",
            str(store),
            "--jobs",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and stored == 0 and proc.poll() is None:
        time.sleep(0.5)
        try:
            with sqlite3.connect(store) as conn:
                stored = conn.execute("SELECT count(*) FROM scenarios").fetchone()[0]
        except sqlite3.Error:
            pass
    assert stored > 0 and proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Interrupted" in err and "Traceback" not in err, err
    assert "Yes:" not in out and "No:" not in out


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t,
        lambda t: t.replace("run_folds = 2", "run_folds = 7"),
        lambda t: t.replace(
            "sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.2, 0.2, 0.6]\ncounts = [0, 5]"
        ),
        lambda t: t.replace('kind = "data-strikes"', 'kind = "holdout"').replace(
            '"ndcg@10", "precision@10", "rmse"', '"ndcg@10"'
        ),
    ],
)
def test_the_plan_size_check_counts_what_plan_expands_to(edit):
    from datalever.scenarios import plan
    from datalever.spec import planned_scenarios

    spec = parse_spec(edit(SMALL_SPEC))
    assert planned_scenarios(spec) == len(plan(spec, "checksum"))


def test_a_spec_that_plans_too_much_is_refused(monkeypatch):
    monkeypatch.setenv("DATALEVER_MAX_SCENARIOS", "10")
    with pytest.raises(DataleverError, match="plans 28 scenarios"):
        parse_spec(SMALL_SPEC)
    monkeypatch.setenv("DATALEVER_MAX_SCENARIOS", "28")
    parse_spec(SMALL_SPEC)


def test_stored_runs_stay_readable_under_newer_limits(finished_store, monkeypatch):
    """A run stored before a limit existed (here: a plan-size limit below its size) is still
    shown; only new runs are refused."""
    monkeypatch.setenv("DATALEVER_MAX_SCENARIOS", "2")
    result = invoke("results", "--store", str(finished_store))
    assert result.exit_code == 0, result.output


def test_a_refused_run_creates_no_store(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC.replace("gender:F", "occupation:astronaut"))
    result = invoke("run", str(spec), "--store", str(tmp_path / "new.sqlite"))
    assert result.exit_code == 2 and "selects nobody" in result.output
    assert not (tmp_path / "new.sqlite").exists()


def test_ask_writes_the_sizes_as_csv(tmp_path, ml100k):
    import io

    import pandas as pd

    result = invoke(
        "ask",
        "--learner",
        "item_mean",
        "--delta=-50%",
        "--store",
        str(tmp_path / "s.sqlite"),
        "--jobs",
        "1",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert list(table.columns) == [
        "size",
        "users",
        "samples",
        "mean_score",
        "low",
        "high",
        "decision",
    ]
    assert len(table) >= 9 and set(table["decision"]) <= {"reaches", "short", "undecided"}


def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_starts(tmp_path, monkeypatch):
    """EASE on MovieLens-100K holds item × item matrices (about 0.27 GB for two folds); under a
    100 MB limit the run is refused with the estimate, and nothing is written."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC.replace('name = "popularity"', 'name = "ease"'))
    monkeypatch.setenv("DATALEVER_MAX_MEMORY", str(100 * 2**20))
    result = invoke("run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--jobs", "1")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "would need about 0.3 GiB (ease" in text, text
    assert not (tmp_path / "s.sqlite").exists()
    monkeypatch.setenv("DATALEVER_MAX_MEMORY", str(2**30))
    from datalever.data.registry import load_dataset
    from datalever.engine.runner import check_memory
    from datalever.learners import make_learner

    data = load_dataset("movielens-100k")
    check_memory([make_learner("ease")], data, jobs=2)
    with pytest.raises(DataleverError, match="fewer --jobs"):
        check_memory([make_learner("ease")], data, jobs=8)
