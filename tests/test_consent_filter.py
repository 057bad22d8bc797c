"""The consent filter: every dataset family and plain lists of works, filtered as a registry
allows them, with a manifest whose counts and checksums match what was written; nothing
overwritten; a served registry that fails means dropped, with the reason."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from datalever.data.tabular import load_table
from datalever.errors import DataleverError
from datalever.registry import Registry
from datalever.registry.contributors import contributor_work
from datalever.registry.filter import RemoteRegistry, filter_dataset, filter_list
from datalever.tasks import load_section
from datalever.tasks.classify.data import load_examples_table
from datalever.tasks.code.corpus import load_table as load_code_table
from tests.conftest import T0, Clock


def data_spec(section: dict, family: str):
    spec, task, data = load_section(section)
    assert task.name == family
    return spec, task, data


def seed(path, dataset: str, reserve: list[str], policy: str = "opt-out", allow=()):
    """A registry where ``reserve`` reserve train-ai on day 1, one more on day 3."""
    clock = Clock()
    with Registry(path, clock=clock) as reg:
        reg.set_dataset_policy(dataset, policy)
        for ident in reserve:
            account = reg.create_account(f"c {ident}")
            reg.register_work(account, contributor_work(dataset, ident))
            reg.set_preference(account, "train-ai", "reserved")
        for ident in allow:
            account = reg.create_account(f"a {ident}")
            reg.register_work(account, contributor_work(dataset, ident))
            reg.set_preference(account, "train-ai", "allowed")
        clock.now = T0 + timedelta(days=2)
    return Registry(path)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_movielens_filtered_by_opt_outs_keeps_everyone_else_exactly(tmp_path, ml100k):
    spec, task, data = data_spec({"dataset": "movielens-100k"}, "recommendation")
    ids = [str(i) for i in data.contributor_ids[:12]]
    registry = seed(tmp_path / "c.sqlite", "movielens-100k", ids)
    manifest = filter_dataset(spec, data, task, registry, "train-genai", tmp_path / "out")
    out = tmp_path / "out"
    kept = pd.read_csv(out / "ratings.csv")
    assert set(kept["user"].astype(str)) & set(ids) == set()
    users = data.contributor_ids[data.records["contributor"].to_numpy()].astype(str)
    assert len(kept) == int((~np.isin(users, ids)).sum())
    reloaded = load_table(out / "ratings.csv")
    assert reloaded.n_contributors == data.n_contributors - 12
    written = json.loads((out / "manifest.json").read_text())
    assert written == manifest
    assert manifest["output"]["sha256"] == sha(out / "ratings.csv")
    assert manifest["input"]["checksum"] == data.checksum()
    assert manifest["output"]["records"] == len(kept)
    assert {d["contributor"] for d in manifest["dropped"]} == set(ids)
    assert all("reservation for train-ai" in d["rule"] for d in manifest["dropped"])
    assert manifest["consent"]["snapshot"] == registry.snapshot()
    # A filtered copy is never overwritten.
    with pytest.raises(DataleverError, match="already holds"):
        filter_dataset(spec, data, task, registry, "train-genai", out)
    assert sha(out / "ratings.csv") == manifest["output"]["sha256"]
    # As of before anyone acted, nothing is dropped... but the policy did not exist yet.
    with pytest.raises(DataleverError, match="no declared policy"):
        filter_dataset(spec, data, task, registry, "train-ai", tmp_path / "o2", "2025-12-01")
    registry.close()


def test_an_opt_in_dataset_keeps_only_recorded_allows(tmp_path):
    spec, task, data = data_spec({"dataset": "digits"}, "classification")
    allow = [str(i) for i in data.contributor_ids[::45]]  # 40 images, about 4 of each digit
    registry = seed(tmp_path / "c.sqlite", "digits", [], policy="opt-in", allow=allow)
    manifest = filter_dataset(spec, data, task, registry, "train-ai", tmp_path / "out")
    registry.close()
    kept = load_examples_table(
        tmp_path / "out" / "examples.parquet",
        {"label": "label", "contributor": "contributor"},
    )
    assert sorted(kept.contributor_ids.astype(str)) == sorted(allow)
    rows = np.flatnonzero(np.isin(data.contributor_ids.astype(str), allow))
    np.testing.assert_array_equal(
        np.sort(kept.features, axis=0), np.sort(data.features[rows], axis=0)
    )
    assert manifest["output"]["contributors"] == len(allow)
    assert len(manifest["dropped"]) == data.n_contributors - len(allow)
    assert {d["rule"] for d in manifest["dropped"]} == {
        "opt-in dataset: no recorded allow → reserved"
    }


def test_code_contributors_are_filtered_from_their_source(tmp_path, code_table):
    columns = {"contributor": "repo", "path": "path", "text": "text"}
    spec, task, data = data_spec({"dataset": str(code_table), "columns": columns}, "code")
    registry = seed(tmp_path / "c.sqlite", data.name, ["email", "json"])
    filter_dataset(spec, data, task, registry, "train-genai", tmp_path / "out")
    registry.close()
    mapping = {"contributor": "contributor", "path": "path", "text": "text"}
    kept = load_code_table(tmp_path / "out" / "code.jsonl", mapping, cache=False)
    assert set(kept.contributor_ids) == set(data.contributor_ids) - {"email", "json"}
    original = [json.loads(line) for line in code_table.read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "out" / "code.jsonl").read_text().splitlines()]
    want = [r for r in original if r["repo"] not in ("email", "json")]
    assert [(r["path"], r["text"]) for r in rows] == [(r["path"], r["text"]) for r in want]


def test_a_list_of_works_urls_and_files(tmp_path):
    picture = tmp_path / "picture.bin"
    picture.write_bytes(b"a picture's bytes")
    digest = hashlib.sha256(b"a picture's bytes").hexdigest()
    clock = Clock()
    with Registry(tmp_path / "c.sqlite", clock=clock) as reg:
        reg.set_dataset_policy("crawl", "opt-out")
        me = reg.create_account("ada")
        reg.register_work(me, "https://ada.example/essay")
        reg.register_work(me, f"sha256:{digest}")
        reg.set_preference(me, "train-ai", "reserved")
        listing = tmp_path / "works.txt"
        listing.write_text(
            "https://ada.example/essay\nhttps://other.example/page\npicture.bin\nnot a work\n"
        )
        manifest = filter_list(reg, listing, "crawl", "train-ai", tmp_path / "out")
    kept = (tmp_path / "out" / "kept.txt").read_text().splitlines()
    assert kept == ["https://other.example/page"]
    dropped = {d["line"]: d for d in manifest["dropped"]}
    assert set(dropped) == {"https://ada.example/essay", "picture.bin", "not a work"}
    assert dropped["picture.bin"]["work"] == f"sha256:{digest}"
    assert dropped["not a work"]["work"] is None and "reserved" in dropped["not a work"]["rule"]
    assert manifest["input"]["sha256"] == sha(listing)
    assert manifest["output"]["sha256"] == sha(tmp_path / "out" / "kept.txt")


def test_a_list_that_is_a_device_is_refused_before_reading(tmp_path):
    with Registry(tmp_path / "c.sqlite") as reg:
        reg.set_dataset_policy("crawl", "opt-out")
        with pytest.raises(DataleverError, match="not a regular file"):
            filter_list(reg, "/dev/zero", "crawl", "train-ai", tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_unreachable_served_registry_drops_everything_and_says_why(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listing = tmp_path / "works.txt"
    listing.write_text("https://a.example/1\nhttps://b.example/2\n")
    remote = RemoteRegistry(f"http://127.0.0.1:{port}", "token", timeout=2)
    manifest = filter_list(remote, listing, "crawl", "train-ai", tmp_path / "out")
    remote.close()
    assert (tmp_path / "out" / "kept.txt").read_text() == ""
    assert manifest["consent"]["failed_closed"] == 2
    assert all("unreachable" in d["rule"] for d in manifest["dropped"])


def test_the_command_line_filters_and_refuses_clearly(tmp_path, ml100k):
    ids = [str(i) for i in ml100k.contributor_ids[:5]]
    seed(tmp_path / "c.sqlite", "movielens-100k", ids).close()
    command = [sys.executable, "-m", "datalever", "consent", "filter", "movielens-100k"]
    where = ["--registry", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out")]
    done = subprocess.run(command + where, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Kept 938 of 943 contributors (5 dropped)" in done.stdout
    bad = subprocess.run(
        command + where + ["--purpose", "painting"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "Unknown purpose" in bad.stderr and "Traceback" not in bad.stderr
