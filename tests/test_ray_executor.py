"""The Ray executor on a real Ray cluster: a head and a worker node started as separate
processes on loopback (one CPU each), with workers killed and runs interrupted as operators
and users do. Skipped when ray is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from datalever.engine import run_spec
from datalever.engine.runner import _batches, check_runnable
from datalever.errors import DataleverError
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC

ray = pytest.importorskip("ray", reason="the Ray executor needs ray: pip install 'datalever[ray]'")
from datalever.engine.ray_executor import RayExecutor, wait_for_cpus  # noqa: E402

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the cluster's processes in /proc"
)

# biased MF: batches long enough (a second or more) that one is running when a worker is killed.
MF_SPEC = (
    SMALL_SPEC.replace('name = "item_mean"', 'name = "biased_mf"\nn_epochs = 5')
    .replace('[[learners]]\nname = "popularity"\n', "")
    .replace("sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.1, 0.2, 0.4, 0.6]")
    .replace('groups = ["gender:F"]', "groups = []")
    .replace("samples = 2", "samples = 3")
)


#: No usage reports, and no token authentication on this loopback cluster (a token file left
#: in ~/.ray by an earlier local Ray would otherwise be demanded of some processes only).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass
class Cluster:
    address: str
    temp: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[1])


def _cluster_pids(temp: Path) -> set[int]:
    """Every process of the cluster: those naming its temp folder (GCS, raylets, monitors)
    and everything below them (workers, agents)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    found = {pid for pid in pids if str(temp).encode() in _cmdline(pid)}
    grew = True
    while grew:
        below = {pid for pid in pids if _parent(pid) in found} - found
        found |= below
        grew = bool(below)
    return found


def _busy_workers(temp: Path) -> list[int]:
    """The cluster's worker processes in the middle of a batch (Ray titles them by task)."""
    return [p for p in _cluster_pids(temp) if _cmdline(p).startswith(b"ray::_ray_batch")]


def _ray_start(args: list[str], temp: Path) -> None:
    env = {**os.environ, **RAY_ENV}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}"]
    common += ["--object-store-memory=200000000", "--disable-usage-stats"]
    done = subprocess.run(
        [ray_bin, "start", *args, *common], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"ray start failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a worker node, one CPU each, as ``ray start`` starts them on two
    machines; every process is killed afterwards."""
    temp = Path(tempfile.mkdtemp(prefix="dlray-", dir="/tmp"))
    port = _free_port()
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)  # this process connects as a driver
    try:
        _ray_start(
            [
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--dashboard-port={_free_port()}",
                f"--dashboard-agent-listen-port={_free_port()}",
            ],
            temp,
        )
        _ray_start(
            [f"--address=127.0.0.1:{port}", f"--dashboard-agent-listen-port={_free_port()}"],
            temp,
        )
        yield Cluster(f"127.0.0.1:{port}", temp)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        pids = _cluster_pids(temp)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.1)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def local_small(ml100k, tmp_path_factory) -> pd.DataFrame:
    """The small spec's numbers from the local executor, the reference for every comparison."""
    store = ResultsStore(tmp_path_factory.mktemp("local") / "local.sqlite")
    return _values(store, run_spec(parse_spec(SMALL_SPEC), store, data=ml100k).run_id)


def _values(store: ResultsStore, run_id: str) -> pd.DataFrame:
    df = store.results(run_id)
    return df.sort_values(["key", "eval_group", "metric"]).reset_index(drop=True)[
        ["key", "eval_group", "metric", "value", "baseline", "reference", "n_users"]
    ]


def test_cluster_gives_the_local_numbers(cluster, ml100k, local_small, tmp_path):
    """Both nodes compute, the data goes into the object store once, and every scenario is
    stored once with the numbers the local executor stores."""
    store = ResultsStore(tmp_path / "ray.sqlite")
    with RayExecutor(ml100k, cluster.address) as on_ray:
        wait_for_cpus(ray, 2)
        assert on_ray.jobs == 2 and on_ray.jobs_per_machine == 1
        report = run_spec(parse_spec(SMALL_SPEC), store, data=ml100k, executor=on_ray)
        data_ref = on_ray._data_ref
        assert data_ref is not None
        # The same executor's next run reuses the object put the first time.
        again = run_spec(
            parse_spec(SMALL_SPEC), ResultsStore(tmp_path / "b.sqlite"), executor=on_ray
        )
        assert on_ray._data_ref is data_ref and again.n_computed == 28
    assert not ray.is_initialized()  # the executor connected, so it disconnected
    assert report.n_planned == report.n_computed == store.count(report.run_id) == 28
    pd.testing.assert_frame_equal(_values(store, report.run_id), local_small)


def test_killed_worker_loses_and_duplicates_nothing(cluster, ml100k, tmp_path):
    """SIGKILL the worker process running a batch: Ray runs the batch again elsewhere and the
    run finishes with every scenario stored exactly once, as a local run stores them."""
    spec = parse_spec(MF_SPEC)
    local_store = ResultsStore(tmp_path / "local.sqlite")
    reference = _values(local_store, run_spec(spec, local_store, data=ml100k).run_id)
    store = ResultsStore(tmp_path / "ray.sqlite")
    killed: list[int] = []

    def kill_a_busy_worker(finished: int, pending: int) -> None:
        if killed:
            return
        deadline = time.time() + 20
        while time.time() < deadline and not (busy := _busy_workers(cluster.temp)):
            time.sleep(0.02)
        assert busy, "no worker was running a batch"
        os.kill(busy[0], signal.SIGKILL)
        killed.append(busy[0])

    report = run_spec(
        spec,
        store,
        data=ml100k,
        executor="ray",
        address=cluster.address,
        on_progress=kill_a_busy_worker,
    )
    assert killed and not Path(f"/proc/{killed[0]}").exists()
    planned = report.n_planned
    assert report.n_computed == planned and report.n_by_others == 0 and not report.interrupted
    got = _values(store, report.run_id)
    assert store.count(report.run_id) == planned == got.key.nunique()
    assert not got.duplicated(["key", "eval_group", "metric"]).any()
    pd.testing.assert_frame_equal(got, reference)
    # Were a batch's results delivered twice, the second write would store nothing.
    _, scenarios, learners = check_runnable(spec, ml100k)
    delivered: list = []
    with RayExecutor(ml100k, cluster.address) as on_ray:
        batches = _batches(spec, scenarios[:6], on_ray.jobs, learners)
        on_ray.run(spec, "auto", batches, delivered.append)
    assert sum(len(b) for b in delivered) == 6
    for batch in delivered:
        assert store.write_many(report.run_id, batch) == [False] * len(batch)
    assert store.count(report.run_id) == planned
    pd.testing.assert_frame_equal(_values(store, report.run_id), reference)


def test_interrupted_on_one_executor_resumes_on_the_other(cluster, ml100k, local_small, tmp_path):
    """Ctrl-C on Ray, resumed locally; Ctrl-C locally, resumed on Ray: only the missing
    scenarios are computed, and the numbers are the uninterrupted local run's."""
    spec = parse_spec(SMALL_SPEC)

    def stop_after_five(finished: int, pending: int) -> None:
        if finished == 5:
            raise KeyboardInterrupt

    for first, then in (("ray", "local"), ("local", "ray")):
        store = ResultsStore(tmp_path / f"{first}-then-{then}.sqlite")
        address = {"ray": cluster.address, "local": None}
        cut = run_spec(
            spec,
            store,
            data=ml100k,
            executor=first,
            address=address[first],
            on_progress=stop_after_five,
        )
        done = store.count(cut.run_id)
        assert cut.interrupted and 5 <= done == cut.n_computed < 28, first
        rest = run_spec(spec, store, data=ml100k, executor=then, address=address[then])
        assert rest.run_id == cut.run_id and not rest.interrupted
        assert rest.n_already_done == done and rest.n_computed == 28 - done
        assert store.count(rest.run_id) == 28
        pd.testing.assert_frame_equal(_values(store, rest.run_id), local_small)
    assert not ray.is_initialized()


def test_unreachable_address_is_a_clear_error(ml100k, tmp_path):
    """Nothing listening there: one clear error within seconds, and nothing stored."""
    started = time.perf_counter()
    with pytest.raises(DataleverError, match="Cannot reach a Ray cluster at 127.0.0.1"):
        run_spec(
            parse_spec(SMALL_SPEC),
            ResultsStore(tmp_path / "r.sqlite"),
            data=ml100k,
            executor="ray",
            address=f"127.0.0.1:{_free_port()}",
        )
    assert time.perf_counter() - started < 15
    assert ResultsStore(tmp_path / "r.sqlite").runs().empty
    with pytest.raises(DataleverError, match="not a Ray cluster address"):
        RayExecutor(ml100k, "no-port-here").connect()
    with pytest.raises(DataleverError, match="An address goes with"):
        run_spec(
            parse_spec(SMALL_SPEC),
            ResultsStore(tmp_path / "r.sqlite"),
            executor=RayExecutor(ml100k),
            address="127.0.0.1:1",
        )
    assert not ray.is_initialized()


def test_error_in_a_task_is_the_local_error(cluster, ml100k, tmp_path):
    """A problem met inside a worker (here a group file emptied after the run was checked)
    stops the run with the same clear error as a local run, not a Ray traceback."""
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2\n3\n")
    spec = parse_spec(
        SMALL_SPEC.replace('groups = ["gender:F"]', f'groups = ["file:{ids}"]').replace(
            "sizes = [0.0, 0.2, 0.6]", "sizes = []"
        )
    )
    checked = check_runnable(spec, ml100k)
    ids.write_text("")
    errors = []
    for executor, address in (("local", None), ("ray", cluster.address)):
        with pytest.raises(DataleverError) as caught:
            run_spec(
                spec,
                ResultsStore(tmp_path / f"{executor}.sqlite"),
                data=ml100k,
                executor=executor,
                address=address,
                checked=checked,
            )
        errors.append(caught.value)
    assert type(errors[1]) is DataleverError and "lists no ids" in errors[1].problem
    assert (errors[1].problem, errors[1].fix) == (errors[0].problem, errors[0].fix)
    assert not ray.is_initialized()


def test_the_command_line_runs_on_the_cluster(cluster, local_small, tmp_path):
    """``datalever run --executor ray --address ...`` in a process of its own: the local
    numbers, and ``results`` reads them like any run's."""
    spec = tmp_path / "small.toml"
    spec.write_text(SMALL_SPEC)
    store = tmp_path / "cli.sqlite"
    env = {**os.environ, **RAY_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "datalever", "run", str(spec), "--store", str(store), "-q",
         "--executor", "ray", "--address", cluster.address],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    s = ResultsStore(store)
    pd.testing.assert_frame_equal(_values(s, s.latest_run()), local_small)
    refused = subprocess.run(
        [sys.executable, "-m", "datalever", "run", str(spec), "--store", str(store), "-q",
         "--address", cluster.address],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--executor ray" in " ".join(refused.stderr.split())


def test_ask_on_the_cluster_gives_the_local_answer(cluster, tmp_path):
    """The adaptive search's batches run on Ray: the same sizes examined, the same samples
    and the same answer as on this machine."""
    import datalever as dl

    question = {
        "name": "ask on ray",
        "data": {"dataset": "digits"},
        "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
        "learners": [{"name": "lda"}],
        "lever": {"kind": "poison", "attack": "label_flip"},
        "collectives": {"sizes": [0.1], "samples": 2},
        "evaluation": {"metrics": ["accuracy"], "groups": ["everyone"]},
        "question": {"metric": "accuracy", "delta": "-5%", "group": "everyone"},
    }
    here = dl.ask(question, store=tmp_path / "local.sqlite", max_minutes=5)
    there = dl.ask(
        question,
        store=tmp_path / "ray.sqlite",
        max_minutes=5,
        executor="ray",
        address=cluster.address,
    )
    assert there.text == here.text
    assert there.size_rows() == here.size_rows()
    with pytest.raises(DataleverError, match="executor='ray'"):
        dl.ask(question, store=tmp_path / "x.sqlite", address=cluster.address)
