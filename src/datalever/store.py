"""The results store: SQLAlchemy Core over SQLite (a file) or any database URL.

Each scenario's result is written in one transaction, keyed by the scenario's stable hash, so a
run that is interrupted loses at most the scenarios in flight and resumes where it stopped.
Scenarios are shared between runs: a run whose plan contains a scenario already stored (same
data, protocol, seed, learner, lever, collective, sample, fold) links to it instead of
recomputing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from datalever.errors import DataleverError

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("dataset", sa.String(500)),
    sa.Column("checksum", sa.String(64)),
    sa.Column("spec", sa.Text),
    sa.Column("n_planned", sa.Integer),
    sa.Column("created_at", sa.String(40)),
    sa.Column("answer", sa.Text, nullable=True),
)

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("learner", sa.String(100)),
    sa.Column("lever", sa.String(100)),
    sa.Column("collective_kind", sa.String(20)),
    sa.Column("collective", sa.String(200)),
    sa.Column("size", sa.Float, nullable=True),
    sa.Column("count", sa.Integer, nullable=True),
    sa.Column("grp", sa.String(200), nullable=True),
    sa.Column("sample", sa.Integer),
    sa.Column("fold", sa.Integer),
    sa.Column("n_participants", sa.Integer),
    sa.Column("path", sa.String(40)),
    sa.Column("seconds", sa.Float),
    sa.Column("finished_at", sa.String(40)),
)

run_scenarios = sa.Table(
    "run_scenarios",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(64), sa.ForeignKey("scenarios.key"), primary_key=True),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("key", sa.String(64), sa.ForeignKey("scenarios.key"), primary_key=True),
    sa.Column("eval_group", sa.String(40), primary_key=True),
    sa.Column("metric", sa.String(40), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("baseline", sa.Float, nullable=True),
    sa.Column("reference", sa.Float, nullable=True),
    sa.Column("n_users", sa.Integer),
)


@dataclass
class ScenarioResult:
    """What the engine hands the store for one finished scenario."""

    key: str
    row: dict
    metrics: list[dict]


def _add_missing_columns(conn: sa.Connection) -> None:
    """Bring a store written by an earlier datalever up to date. Changes to the schema are only
    ever new nullable columns, so adding them keeps every stored result as it was."""
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def store_url(location: str | Path) -> str:
    text = str(location)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser()}"


class ResultsStore:
    """Results of every run, in one database."""

    def __init__(self, location: str | Path) -> None:
        self.url = store_url(location)
        if self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if path.exists() and path.is_dir():
                raise DataleverError(
                    f"The store {path} is a directory.", "give a file path such as results.sqlite."
                )
            if not path.parent.exists():
                raise DataleverError(
                    f"Cannot open the store {path}: the folder {path.parent} does not exist.",
                    "create the folder, or give another --store path.",
                )
        try:
            self.engine = sa.create_engine(self.url)
            with self.engine.begin() as conn:
                metadata.create_all(conn)
                _add_missing_columns(conn)
        except (SQLAlchemyError, ValueError) as e:
            raise DataleverError(
                f"Cannot open the results store {self.url}: {str(e).splitlines()[0]}.",
                "give --store a writable SQLite file path or a database URL "
                "(postgresql://user@host/db) that is reachable and holds datalever tables.",
            ) from None

    def start_run(
        self, run_id: str, name: str, dataset: str, checksum: str, spec: dict, n_planned: int
    ) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(runs.c.n_planned).where(runs.c.run_id == run_id)
            ).first()
            if exists:  # a run that grows (as `ask` makes it) records its latest plan
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id)
                    .values(spec=json.dumps(spec), n_planned=max(exists[0] or 0, n_planned))
                )
            else:
                conn.execute(
                    runs.insert().values(
                        run_id=run_id,
                        name=name,
                        dataset=dataset,
                        checksum=checksum,
                        spec=json.dumps(spec),
                        n_planned=n_planned,
                        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    )
                )

    def link_existing(self, run_id: str, keys: list[str]) -> set[str]:
        """Link already stored scenarios among ``keys`` to the run; return all done keys."""
        done: set[str] = set()
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                found = conn.execute(sa.select(scenarios.c.key).where(scenarios.c.key.in_(chunk)))
                done.update(r[0] for r in found)
            linked = {
                r[0]
                for r in conn.execute(
                    sa.select(run_scenarios.c.key).where(run_scenarios.c.run_id == run_id)
                )
            }
            new = [{"run_id": run_id, "key": k} for k in done - linked]
            if new:
                conn.execute(run_scenarios.insert(), new)
        return done

    def write(self, run_id: str, result: ScenarioResult) -> None:
        """Store one scenario and its metric rows in a single transaction."""
        with self.engine.begin() as conn:
            conn.execute(scenarios.insert().values(key=result.key, **result.row))
            if result.metrics:
                conn.execute(results.insert(), [{"key": result.key, **m} for m in result.metrics])
            conn.execute(run_scenarios.insert().values(run_id=run_id, key=result.key))

    def runs(self) -> pd.DataFrame:
        counts = (
            sa.select(run_scenarios.c.run_id, sa.func.count().label("n_done"))
            .group_by(run_scenarios.c.run_id)
            .subquery()
        )
        q = (
            sa.select(
                runs.c.run_id,
                runs.c.name,
                runs.c.dataset,
                runs.c.n_planned,
                sa.func.coalesce(counts.c.n_done, 0).label("n_done"),
                runs.c.created_at,
            )
            .select_from(runs.outerjoin(counts, runs.c.run_id == counts.c.run_id))
            .order_by(runs.c.created_at)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(
                conn.execute(q).mappings().all(),
                columns=["run_id", "name", "dataset", "n_planned", "n_done", "created_at"],
            )

    def run_spec(self, run_id: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs.c.spec).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise DataleverError(f"No run {run_id!r} in {self.url}.", "see `datalever runs`.")
        return json.loads(row[0])

    def set_answer(self, run_id: str, answer: str) -> None:
        """Keep the sentence an adaptive search (`ask`) arrived at with its run."""
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(answer=answer))

    def answer(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs.c.answer).where(runs.c.run_id == run_id)).first()
        return None if row is None else row[0]

    def run_checksum(self, run_id: str) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs.c.checksum).where(runs.c.run_id == run_id)).first()
        return "" if row is None else str(row[0])

    def latest_run(self) -> str:
        table = self.runs()
        if table.empty:
            raise DataleverError(
                f"The store {self.url} holds no runs yet.",
                "run `datalever demo` or `datalever run SPEC.toml` first, or give --store.",
            )
        return str(table["run_id"].iloc[-1])

    def results(self, run_id: str) -> pd.DataFrame:
        """One row per scenario × evaluation group × metric of the run."""
        q = (
            sa.select(
                scenarios,
                results.c.eval_group,
                results.c.metric,
                results.c.value,
                results.c.baseline,
                results.c.reference,
                results.c.n_users,
            )
            .select_from(
                run_scenarios.join(scenarios, run_scenarios.c.key == scenarios.c.key).join(
                    results, results.c.key == scenarios.c.key
                )
            )
            .where(run_scenarios.c.run_id == run_id)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all())

    def count(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(run_scenarios)
                .where(run_scenarios.c.run_id == run_id)
            ).scalar_one()
