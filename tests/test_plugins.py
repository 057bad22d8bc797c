"""Plugins: a third-party package registers a learner, a lever, a metric and a dataset through
entry points, and a spec uses them on the real command line once the package is installed; bad
entries are refused in one paragraph naming their package, and nothing changes without them."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from datalever import plugins
from datalever.errors import DataleverError
from datalever.protocols import DataStrikesProtocol

FIXTURE = Path(__file__).parent / "fixtures" / "plugin_pkg"

SPEC = """
name = "plugin"
seed = 3

[data]
dataset = "plugin-ratings"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "item_median"
shrink = 2.0

[lever]
kind = "selective_strike"
threshold = 4

[collectives]
sizes = [0.5]
samples = 1

[evaluation]
metrics = ["ndcg@10", "rmse", "dcg@10"]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example plugin package built and installed into a throwaway folder (a copy of its
    source is built, so the repository gets no build files)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    shutil.copytree(FIXTURE, source)
    target = root / "site"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    assert (target / "datalever_demo_plugin").is_dir()
    return target


def cli(*args: str, path: list[Path] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_a_spec_uses_the_plugin_learner_lever_metric_and_dataset(
    installed, ml100k, tmp_path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    db = tmp_path / "r.sqlite"
    ran = cli("run", str(spec), "--store", str(db), "-q", path=[installed])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "selective_strike" in ran.stdout and "item_median" in ran.stdout
    rows = json.loads(
        cli("results", "--store", str(db), "--format", "json", path=[installed]).stdout
    )
    everyone = [r for r in rows if r["eval_group"] == "everyone" and r["metric"] == "rmse"]
    assert {(r["learner"], r["lever"]) for r in everyone} == {
        ("item_median", "none"),
        ("item_median", "selective_strike"),
    }
    # The plugin's own learner, fitted by hand on fold 0, gives the stored no-action RMSE.
    sys.path.insert(0, str(installed))
    try:
        plugin = importlib.import_module("datalever_demo_plugin")
    finally:
        sys.path.remove(str(installed))
    fold = DataStrikesProtocol(n_folds=5).folds(ml100k, 3)[0]
    train, test = ml100k.training_set(fold.train), ml100k.training_set(fold.test)
    predicted = plugin.ItemMedian(shrink=2.0).fit(train).predict(test.users, test.items)
    rmse = float(np.sqrt(np.mean((predicted - test.ratings) ** 2)))
    stored = next(r["mean"] for r in everyone if r["lever"] == "none")
    assert stored == pytest.approx(rmse, rel=1e-12)
    struck = next(r for r in everyone if r["lever"] == "selective_strike")
    assert struck["n_participants"] > 0 and struck["mean"] != stored
    # The plugin's metric is judged beside the built-in ones: unnormalised DCG exceeds nDCG.
    by_metric = {
        r["metric"]: r["mean"]
        for r in rows
        if r["eval_group"] == "everyone" and r["lever"] == "none"
    }
    assert by_metric["dcg@10"] > 1 > by_metric["ndcg@10"] > 0


def test_without_the_plugin_its_names_are_unknown(tmp_path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('dataset = "plugin-ratings"', 'dataset = "movielens-100k"'))
    ran = cli("run", str(spec), "--store", str(tmp_path / "r.sqlite"))
    out = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 2 and "Traceback" not in out
    assert any(n in out for n in ("selective_strike", "item_median", "dcg@10"))


# ------------------------------------------------------------- entries checked in process


BAD_MODULE = """
from datalever.learners.base import Learner, Model
from datalever.levers.strike import Strike


class NotALearner:
    pass


class NoTask(Learner):
    name = "no_task"
    task = "painting"

    def fit(self, train):
        return None


class Named(Learner):
    name = "other_name"

    def fit(self, train):
        return None


class GoodLearner(Learner):
    name = "good_learner"

    def fit(self, train):
        return None


class WrongKind(Strike):
    kind = "strike"
"""


def distribution(folder: Path, package: str, entries: dict[str, dict[str, str]]) -> None:
    """An installed distribution as pip leaves it: its metadata and its entry points."""
    info = folder / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    lines = []
    for group, names in entries.items():
        lines += [f"[{group}]", *(f"{name} = {value}" for name, value in names.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on the path to install distributions into; plugins are forgotten after."""
    (tmp_path / "bad_plugin_mod.py").write_text(textwrap.dedent(BAD_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("bad_plugin_mod", None)
    importlib.invalidate_caches()
    plugins.reload()


def loaded(site: Path, group: str, name: str, value: str) -> None:
    distribution(site, "bad-pkg", {group: {name: value}})
    importlib.invalidate_caches()
    plugins.reload()


def test_a_good_learner_joins_the_catalogues(site) -> None:
    from datalever.learners import LEARNERS as RECOMMENDERS
    from datalever.tasks import LEARNERS, check_learner, learners_of

    loaded(site, "datalever.learners", "good_learner", "bad_plugin_mod:GoodLearner")
    assert LEARNERS["good_learner"].__name__ == "GoodLearner"
    assert "good_learner" in RECOMMENDERS and "good_learner" in learners_of("recommendation")
    check_learner("good_learner", {}, "recommendation")
    with pytest.raises(DataleverError, match="is a recommendation learner"):
        check_learner("good_learner", {}, "classification")
    plugins.reload()
    distribution(site, "other-pkg", {"datalever.learners": {"good_learner": "x:y"}})
    importlib.invalidate_caches()
    with pytest.raises(DataleverError, match="same name as") as caught:
        check_learner("ease", {})
    assert "'bad-pkg'" in str(caught.value) and "'other-pkg'" in str(caught.value)


@pytest.mark.parametrize(
    ("group", "name", "value", "says"),
    [
        ("datalever.learners", "thing", "bad_plugin_mod:NotALearner", "is not a learner"),
        ("datalever.learners", "no_task", "bad_plugin_mod:NoTask", "names no task family"),
        ("datalever.learners", "named", "bad_plugin_mod:Named", "learner named 'other_name'"),
        ("datalever.learners", "ease", "bad_plugin_mod:GoodLearner", "name of a built-in"),
        ("datalever.learners", "gone", "no_such_plugin_module:X", "cannot be loaded"),
        ("datalever.learners", "Bad Name", "bad_plugin_mod:GoodLearner", "cannot write"),
        ("datalever.levers", "my_strike", "bad_plugin_mod:WrongKind", "of kind 'strike'"),
        ("datalever.levers", "not_lever", "bad_plugin_mod:NotALearner", "is not a lever"),
        ("datalever.datasets", "some-data", "bad_plugin_mod:NotALearner", "is not a function"),
        ("datalever.metrics", "bad_metric", "bad_plugin_mod:NotALearner", "is not a function"),
    ],
)
def test_bad_entries_are_refused_naming_their_package(site, group, name, value, says) -> None:
    from datalever.levers import lever_class
    from datalever.metrics import parse_metric
    from datalever.tasks import check_learner, task_of_data

    loaded(site, group, name, value)
    look_up = {
        "datalever.learners": lambda: check_learner("ease", {}),
        "datalever.levers": lambda: lever_class("strike"),
        "datalever.datasets": lambda: task_of_data("some-data", None),
        "datalever.metrics": lambda: parse_metric("ndcg@10"),
    }[group]
    with pytest.raises(DataleverError, match=says) as caught:
        look_up()
    message = str(caught.value)
    assert "'bad-pkg'" in message and "\n" not in message and caught.value.fix


def test_a_bad_plugin_on_the_command_line_is_one_paragraph(tmp_path) -> None:
    (tmp_path / "bad_plugin_mod.py").write_text(textwrap.dedent(BAD_MODULE))
    distribution(tmp_path, "bad-pkg", {"datalever.levers": {"oops": "bad_plugin_mod:NotALearner"}})
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('dataset = "plugin-ratings"', 'dataset = "movielens-100k"'))
    ran = cli("run", str(spec), "--store", str(tmp_path / "r.sqlite"), path=[tmp_path])
    out = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 2 and "Traceback" not in out
    assert "'bad-pkg'" in out and "is not a lever" in out and "pip uninstall bad-pkg" in out


def test_nothing_is_loaded_on_import() -> None:
    """A broken plugin cannot stop ``import datalever``: plugins load on first use."""
    code = "import datalever.tasks, datalever.levers, sys; print('bad_plugin_mod' in sys.modules)"
    with_bad = Path(sys.path[0])  # any folder: the point is that nothing is imported
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=with_bad
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "False"


def test_a_plugin_classification_metric_is_judged_like_a_built_in_one(installed, tmp_path):
    """The plugin's error rate, read for every scenario and group, is one minus the accuracy
    datalever stores beside it."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "plugin metric"\n[data]\ndataset = "digits"\n'
        '[protocol]\nkind = "data-strikes"\nfolds = 5\nrun_folds = 1\n'
        '[[learners]]\nname = "lda"\n[lever]\nkind = "strike"\n'
        "[collectives]\nsizes = [0.2]\nsamples = 2\n"
        '[evaluation]\nmetrics = ["accuracy", "error_rate"]\n'
        'groups = ["everyone", "participants"]\n'
    )
    db = tmp_path / "r.sqlite"
    ran = cli("run", str(spec), "--store", str(db), "-q", path=[installed])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    raw = cli("results", "--store", str(db), "--raw", "--format", "json", path=[installed])
    assert raw.returncode == 0, raw.stderr
    rows = json.loads(raw.stdout)
    value = {(r["key"], r["eval_group"], r["metric"]): r["value"] for r in rows}
    pairs = [(k, g) for k, g, m in value if m == "accuracy"]
    assert len(pairs) >= 4
    for key, group in pairs:
        assert value[(key, group, "error_rate")] == pytest.approx(
            1 - value[(key, group, "accuracy")], abs=1e-12
        )
    unknown = cli("run", str(spec), "--store", str(tmp_path / "x.sqlite"), "-q")
    assert unknown.returncode == 2 and "error_rate" in unknown.stderr


def test_data_info_knows_a_plugin_dataset(installed) -> None:
    shown = cli("data", "info", "plugin-ratings", path=[installed])
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "contributors: 943" in shown.stdout and "records:      100,000" in shown.stdout
    unknown = cli("data", "info", "plugin-ratings")
    assert unknown.returncode == 2 and "Unknown dataset 'plugin-ratings'" in unknown.stderr
