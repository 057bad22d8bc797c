"""Shared fixtures: the real MovieLens-100K (fetched once into the cache) and spec helpers."""

from __future__ import annotations

import json
import os
import sysconfig
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from datalever.data.contributions import Contributions, TrainingSet
from datalever.data.registry import load_dataset
from datalever.spec import Spec, parse_spec


@pytest.fixture(scope="session")
def ml100k() -> Contributions:
    return load_dataset("movielens-100k")


SMALL_SPEC = """
name = "small"
seed = 3

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 2

[[learners]]
name = "item_mean"

[[learners]]
name = "popularity"

[lever]
kind = "strike"

[collectives]
sizes = [0.0, 0.2, 0.6]
samples = 2
groups = ["gender:F"]

[evaluation]
metrics = ["ndcg@10", "precision@10", "rmse"]
"""


@pytest.fixture
def small_spec() -> Spec:
    return parse_spec(SMALL_SPEC)


def records_from(users, items, ratings, n_users: int, n_items: int) -> TrainingSet:
    """Records from sequences, in the loaders' types (int32 codes, float64 ratings)."""
    return TrainingSet(
        np.asarray(users, dtype=np.int32),
        np.asarray(items, dtype=np.int32),
        np.asarray(ratings, dtype=np.float64),
        n_users,
        n_items,
    )


def random_records(rng: np.random.Generator, n: int, n_users: int, n_items: int) -> TrainingSet:
    """``n`` records with users, items and whole-star ratings drawn uniformly (in that order)."""
    return TrainingSet(
        rng.integers(0, n_users, n).astype(np.int32),
        rng.integers(0, n_items, n).astype(np.int32),
        rng.integers(1, 6, n).astype(np.float64),
        n_users,
        n_items,
    )


def run_fast_and_plain(spec, store, data, rtol: float = 1e-9, atol: float = 1e-12):
    """Run ``spec`` through the fastest exact paths and through plain fits only, check every
    stored value agrees (the same scenarios, groups and metrics), and return the fast run's
    results."""
    from datalever.engine import run_spec

    fast = store.results(run_spec(spec, store, data=data).run_id)
    plain = store.results(run_spec(spec, store, data=data, path="plain").run_id)
    key = ["learner", "lever", "collective", "sample", "fold", "eval_group", "metric"]
    both = fast.merge(plain, on=key, suffixes=("_fast", "_plain"))
    assert len(both) == len(fast) == len(plain)
    np.testing.assert_allclose(both["value_fast"], both["value_plain"], rtol=rtol, atol=atol)
    assert set(plain["path"]) == {"plain"}
    return fast


PACKAGES = ("json", "email", "http", "urllib", "logging", "concurrent", "xmlrpc", "wsgiref")


@pytest.fixture(scope="session")
def code_table(tmp_path_factory) -> Path:
    """Real code: eight standard-library packages, one contributor each, as a JSONL table."""
    root = Path(sysconfig.get_paths()["stdlib"])
    path = tmp_path_factory.mktemp("code") / "stdlib.jsonl"
    with path.open("w") as out:
        for package in PACKAGES:
            for f in sorted((root / package).rglob("*.py")):
                row = {"repo": package, "path": str(f.relative_to(root)), "text": f.read_text()}
                out.write(json.dumps(row) + "\n")
    return path


# --- the consent registry ---------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """A clock a registry test moves by hand, so as-of times are exact."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, days: float = 1) -> datetime:
        self.now += timedelta(days=days)
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path):
    """A new registry's location: a SQLite file, and a throwaway PostgreSQL database when
    DATALEVER_TEST_POSTGRES names a server."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
        return
    server = os.environ.get("DATALEVER_TEST_POSTGRES")
    if not server:
        pytest.skip("set DATALEVER_TEST_POSTGRES to test a PostgreSQL registry")
    pytest.importorskip("psycopg")
    import sqlalchemy as sa

    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"datalever_reg_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()
