"""The engine's worker pool is safe whatever the calling process has loaded, and its workers
never outlive it: real processes, killed and interrupted as users and schedulers do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from datalever.engine import run_spec
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC

ROOT = Path(__file__).resolve().parents[1]

# biased MF runs numba's parallel kernels, in the workers as in this process; four batches.
MF_SMALL = (
    SMALL_SPEC.replace('name = "item_mean"', 'name = "biased_mf"\nn_epochs = 2')
    .replace('[[learners]]\nname = "popularity"\n', "")
    .replace("run_folds = 2", "run_folds = 1")
    .replace("sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.2]")
    .replace('groups = ["gender:F"]', "groups = []")
    .replace("samples = 2", "samples = 3")
)

# Long enough (tens of seconds on two cores) that a run is still going when it is stopped.
LONG_SPEC = """
name = "long"
seed = 3

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 2

[[learners]]
name = "biased_mf"

[lever]
kind = "strike"

[collectives]
sizes = [0.0, 0.1, 0.2, 0.4, 0.6]
samples = 4

[evaluation]
metrics = ["ndcg@10"]
"""

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _values(store: ResultsStore, run_id: str) -> pd.DataFrame:
    df = store.results(run_id)
    return df.sort_values(["key", "eval_group", "metric"]).reset_index(drop=True)[
        ["key", "eval_group", "metric", "value", "baseline", "reference"]
    ]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` (pool workers, the fork server, the resource tracker),
    with its start time, found by parent pid in /proc."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in parents.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def _forked(pid: int) -> bool:
    """Whether a process was forked without a new program: a pool worker (whether forked from
    the run or from a fork server), not the fork server or resource tracker themselves."""
    stat = _stat(pid)
    try:
        mine = Path(f"/proc/{pid}/cmdline").read_bytes()
        return stat is not None and mine == Path(f"/proc/{stat[1]}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(processes: dict[int, int]) -> list[int]:
    """Those still running (a zombie has exited; a reused pid is another process)."""
    out = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == started:
            out.append(pid)
    return out


def _start_run(tmp_path: Path, **popen) -> tuple[subprocess.Popen, dict]:
    """``datalever run --jobs 2`` on a long spec, once both workers are computing."""
    spec = tmp_path / "long.toml"
    spec.write_text(LONG_SPEC)
    args = ["run", str(spec), "--store", str(tmp_path / "r.sqlite"), "--jobs", "2", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "datalever", *args], cwd=ROOT, **popen)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        below = _descendants(proc.pid)
        if len([p for p in below if _forked(p)]) >= 2:
            time.sleep(0.5)  # into their first batches
            return proc, _descendants(proc.pid)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the workers never started (exit {proc.poll()})")


def test_pool_is_safe_after_the_caller_started_gnu_openmp(ml100k, tmp_path):
    """A script that has used numba's threading layer (GNU OpenMP here, which cannot be used
    again across a fork) and then runs with a pool: the run completes, with the same numbers as
    in one process. The script has no ``__main__`` guard: workers never run it again."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import numba

            from datalever.engine import run_spec
            from datalever.spec import parse_spec
            from datalever.store import ResultsStore

            numba.get_num_threads()  # starts numba's threading layer here
            print("layer", numba.threading_layer())
            store = ResultsStore({str(tmp_path / "b.sqlite")!r})
            report = run_spec(parse_spec({MF_SMALL!r}), store, jobs=2)
            print("computed", report.n_computed)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("computed 4") == 1, done.stdout  # the script ran once
    a = ResultsStore(tmp_path / "a.sqlite")
    ra = run_spec(parse_spec(MF_SMALL), a, data=ml100k, jobs=1)
    pd.testing.assert_frame_equal(
        _values(a, ra.run_id), _values(ResultsStore(tmp_path / "b.sqlite"), ra.run_id)
    )


@pytest.mark.slow
@needs_proc
def test_workers_exit_when_the_run_is_killed(tmp_path):
    """``kill -9`` of a run: its workers, the fork server and the resource tracker all go
    within seconds, and none keeps the caller's stdout or stderr open."""
    proc, below = _start_run(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=20)  # returns only once no process holds the pipes
    deadline = time.time() + 10
    while _alive(below) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(below), f"left running: {_alive(below)}"


@pytest.mark.slow
@needs_proc
def test_ctrl_c_stops_the_workers_cleanly(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it): the run exits 130
    promptly with its one clean message, no worker prints a traceback, and no process is left
    holding the caller's output."""
    proc, below = _start_run(
        tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _assert_clean_stop(proc, below, lambda: os.killpg(proc.pid, signal.SIGINT))


def _assert_clean_stop(proc, below: list[int], stop) -> None:
    """``stop()`` ends the run promptly with exit 130 and its one clean message: no
    traceback, nothing left for the resource tracker, no process left behind."""
    started = time.time()
    stop()
    _, err = proc.communicate(timeout=30)
    assert time.time() - started < 15
    assert proc.returncode == 130, err
    assert "Interrupted after" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "leaked" not in err, err
    assert not _alive(below)


@pytest.mark.slow
@needs_proc
def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path):
    """SIGTERM to the run alone (``kill``, a batch scheduler): the same clean stop as Ctrl-C,
    exit 130, no traceback, no worker left."""
    proc, below = _start_run(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _assert_clean_stop(proc, below, lambda: os.kill(proc.pid, signal.SIGTERM))


def test_importing_the_engine_starts_no_threading_layer():
    """The fork server imports the engine and then forks every worker: had the import started
    numba's threading layer (GNU OpenMP), no worker could run a parallel kernel."""
    code = (
        "import datalever.engine.executor, datalever.learners.mf, datalever.learners.knn\n"
        "import numba\n"
        "try:\n"
        "    print(numba.threading_layer())\n"
        "except ValueError:\n"
        "    print('none')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "none", done.stdout + done.stderr


@pytest.mark.slow
@needs_proc
def test_a_worker_killed_from_outside_gives_a_clear_error(tmp_path):
    """A worker killed from outside (the out-of-memory killer, an operator): the run stops
    with one paragraph and exit 2, finished scenarios kept, and leaves no process behind."""
    proc, below = _start_run(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.kill(next(p for p in below if _forked(p)), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "worker process stopped unexpectedly" in " ".join(err.split())
    assert "Traceback" not in err, err
    deadline = time.time() + 10
    while _alive(below) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(below)
