"""Fuzzing the code task family: every case of :mod:`tests.fuzz.code` (bad ``[data]``
layouts, token schemes and column mappings, code tables and folders broken in every way,
``kneser_ney``, ``unigram`` and ``transformer`` parameters, ``plant`` and ``poison`` on code and
the levers and metrics of other families, ``data info --layout/--columns`` and ``ask --data
python-stdlib``), run through the real command line in a child process under a memory limit,
so a runaway allocation fails its case instead of the test run. Each must end without a
traceback, a hang or an echoed control character, refused ones with exit 2, one paragraph and
every stored byte unchanged. ``python -m tests.fuzz`` runs them too.

Cases whose fault lies outside the code family are listed in :data:`KNOWN` with where the
fault is; they are expected to fail, strictly, so fixing one makes its case pass and the list
must then lose it.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import numpy as np
import pytest

from tests.fuzz.code import code_cases
from tests.fuzz.harness import make_template_store, run_isolated

CASES = code_cases()

_QUESTION = (
    "spec.spec_from_dict checks a question on a lever's own metric against the lever's kind "
    "only, not the data's family: plant measures target_score and amplification on "
    "recommenders and success_bound on classifiers, never on code (nor target_score on "
    "classifiers), so the run ends without an answer and without a word"
)
#: Cases that fail for a fault outside the code family, and where it lies.
KNOWN: dict[str, str] = {
    "code spec: question on target_score of a plant": _QUESTION,
    "code spec: question on success_bound of a plant": _QUESTION,
}


def _params():
    for i, case in enumerate(CASES):
        marks = (
            [pytest.mark.xfail(reason=KNOWN[case.name], strict=True)] if case.name in KNOWN else []
        )
        yield pytest.param(i, id=case.name[:90], marks=marks)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, ml100k) -> dict[int, tuple[str | None, str]]:
    root = tmp_path_factory.mktemp("code-fuzz")
    template = make_template_store(root / "template.sqlite")
    return run_isolated("tests.fuzz.code:code_cases", list(range(len(CASES))), root, template)


@pytest.mark.parametrize("index", list(_params()))
def test_code_input_is_refused_cleanly(index, outcomes):
    problem, output = outcomes[index]
    assert problem is None, f"{CASES[index].name}: {problem}\n{output}"


def test_every_known_failure_is_a_case():
    names = {case.name for case in CASES}
    assert set(KNOWN) <= names, sorted(set(KNOWN) - names)


# ----------------------------------------------------------------------------- regressions
# What a clean exit cannot show, and what a case's files cannot hold (links, pipes).


@contextmanager
def _within(seconds: int):
    def on_alarm(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_folder_with_pipes_devices_and_link_loops_loads_at_once(tmp_path):
    """A ``*.py`` that is a named pipe, or a link to /dev/zero, would be read forever (the
    pipe blocks at open, /dev/zero never ends); links that loop would be walked forever. They
    are left out, each with its reason, and the rest loads."""
    from datalever.tasks.code.corpus import load_folder

    for repo in ("a", "b"):
        (tmp_path / "repos" / repo).mkdir(parents=True)
        (tmp_path / "repos" / repo / "m.py").write_text(f"{repo} = 1\n")
    os.mkfifo(tmp_path / "repos" / "a" / "pipe.py")
    os.symlink("/dev/zero", tmp_path / "repos" / "b" / "zero.py")
    os.symlink("..", tmp_path / "repos" / "a" / "loop")
    os.symlink(tmp_path / "repos", tmp_path / "repos" / "b" / "up")
    with _within(20):
        corpus = load_folder(tmp_path / "repos", cache=False)
    assert sorted(corpus.records["path"]) == ["a/m.py", "b/m.py"]
    assert sorted(corpus.skipped) == [
        ("a/pipe.py", "not a regular file"),
        ("b/zero.py", "not a regular file"),
    ]


def test_a_file_over_the_cap_is_left_out_unread(tmp_path, monkeypatch):
    """A file larger than ``max_file_bytes`` is left out from its size, not read whole first
    (a generated 10 GB module would otherwise fill the memory)."""
    from pathlib import Path

    from datalever.tasks.code.corpus import load_folder

    (tmp_path / "r" / "a").mkdir(parents=True)
    (tmp_path / "r" / "a" / "m.py").write_text("x = 1\n")
    (tmp_path / "r" / "a" / "big.py").write_text("y = 2\n" * 1000)
    opened: list[str] = []
    real = Path.open

    def spy(self, *args, **kwargs):
        opened.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    corpus = load_folder(tmp_path / "r", max_file_bytes=100, cache=False)
    assert "big.py" not in opened
    assert corpus.skipped == [("a/big.py", "larger than 100 bytes (6,000)")]


def test_a_planted_trigger_and_target_never_share_a_code(code_table):
    """Tokens the corpus never had take the codes reserved after its vocabulary. The trigger
    comment and the target were coded apart, so the trigger's first new token and the
    target's got the same code: the model could not tell them apart."""
    from datalever.levers.plant import Plant
    from datalever.tasks.code.corpus import load_table

    corpus = load_table(code_table, {"contributor": "repo"}, cache=False)
    plant = Plant(
        strategy="trigger_completion", target="import antigravity", trigger="# xyzzy plugh"
    )
    trigger, target = plant.snippet(corpus)
    new_trigger = trigger[trigger >= len(corpus.vocabulary)]
    new_target = target[target >= len(corpus.vocabulary)]
    assert len(new_trigger) and len(new_target)
    assert not set(new_trigger.tolist()) & set(new_target.tolist())
    words = corpus.vocabulary.decode(target[target < len(corpus.vocabulary)])
    assert words == ["import", "<nl>"]
    assert np.array_equal(plant.snippet(corpus)[1], target)  # the same codes every time


def test_ask_reads_a_spec_on_a_folder_of_code_as_code(tmp_path):
    """``ask --spec`` took the family of a folder of code from its name alone (a folder, so
    ratings), and so asked about ndcg@10, which code does not measure."""
    from typer.testing import CliRunner

    from datalever.cli import app
    from tests.fuzz.code import FOLDER_SPEC, GOOD_FOLDER, _dump

    for name, blob in {"spec.toml": _dump(FOLDER_SPEC), **GOOD_FOLDER}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(blob)
    argv = ["ask", "--spec", str(tmp_path / "spec.toml"), "--delta=-1%", "--max-minutes", "0.05"]
    argv += ["--jobs", "1", "--store", str(tmp_path / "s.sqlite"), "--format", "json"]
    started = time.perf_counter()
    result = CliRunner().invoke(app, argv, env={"DATALEVER_STORE": None})
    assert result.exit_code == 0, result.output
    assert '"metric": "bits_per_token"' in result.output
    assert time.perf_counter() - started < 60
