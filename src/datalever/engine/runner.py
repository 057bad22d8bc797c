"""Run a spec: plan its scenarios, skip those already stored, run the rest in batches (in this
process or a pool of worker processes) and store each result as it finishes."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from datalever.collectives import group_members
from datalever.data.contributions import Contributions
from datalever.engine.executor import Executor
from datalever.errors import DataleverError
from datalever.learners import make_learner
from datalever.scenarios import Scenario, plan
from datalever.spec import Spec
from datalever.store import ResultsStore, ScenarioResult

PATHS = ("auto", "plain")


@dataclass
class RunReport:
    run_id: str
    n_planned: int
    n_already_done: int
    n_computed: int
    seconds: float
    interrupted: bool = False


def load_spec_data(spec: Spec) -> Contributions:
    from datalever.data.registry import load_dataset
    from datalever.data.tabular import load_table

    if spec.data.columns:
        return load_table(spec.data.dataset, spec.data.columns, name=spec.data.dataset)
    return load_dataset(spec.data.dataset)


def _batches(spec: Spec, pending: list[Scenario], jobs: int) -> list[tuple[int, int, list]]:
    """Batches of scenarios sharing a (learner, fold), in that order so each worker reuses its
    fold context; small enough that every worker gets work."""
    index_of = {ls.name: i for i, ls in enumerate(spec.learners)}
    groups: dict[tuple[int, int], list[Scenario]] = defaultdict(list)
    for sc in pending:
        groups[(index_of[sc.learner], sc.fold)].append(sc)
    learners = [make_learner(ls.name, ls.params()) for ls in spec.learners]
    out = []
    for (li, fold), scs in sorted(groups.items()):
        learner = learners[li]
        shared_by = 1 if learner.runs_on_gpu else max(1, jobs)  # GPU batches run one at a time
        size = max(1, min(learner.batch_size, math.ceil(len(scs) / shared_by)))
        out.extend((li, fold, scs[i : i + size]) for i in range(0, len(scs), size))
    return out


def run_spec(
    spec: Spec,
    store: ResultsStore,
    *,
    data: Contributions | None = None,
    jobs: int = 1,
    path: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
    executor: Executor | None = None,
) -> RunReport:
    """Run every planned scenario of ``spec`` not yet in ``store``.

    ``on_plan(n_pending, n_planned)`` is called once before work starts and
    ``on_progress(n_finished, n_pending)`` after each stored scenario. ``executor`` reuses
    worker processes (and their fold contexts) across runs on the same data.
    """
    started = time.perf_counter()
    if executor is not None:
        data = executor.data
    data = data if data is not None else load_spec_data(spec)
    check_collectives(spec, data)
    checksum = data.checksum()
    if path not in PATHS:
        raise DataleverError(f"Unknown fitting path {path!r}.", f"use one of: {', '.join(PATHS)}.")
    scenarios = plan(spec, checksum, path)
    run_id = run_id or spec.run_id(path)
    store.start_run(
        run_id, spec.name, spec.data.dataset, checksum, spec.model_dump(mode="json"), len(scenarios)
    )
    done = store.link_existing(run_id, [s.key for s in scenarios])
    pending = [s for s in scenarios if s.key not in done]
    if on_plan:
        on_plan(len(pending), len(scenarios))
    batches = _batches(spec, pending, executor.jobs if executor is not None else jobs)
    finished = 0
    interrupted = False

    def record(results: list[ScenarioResult]) -> None:
        nonlocal finished
        for r in results:
            store.write(run_id, r)
            finished += 1
            if on_progress:
                on_progress(finished, len(pending))

    try:
        if executor is not None:
            executor.run(spec, path, batches, record)
        else:
            with Executor(data, jobs) as own:
                own.run(spec, path, batches, record)
    except KeyboardInterrupt:
        interrupted = True
    return RunReport(
        run_id, len(scenarios), len(done), finished, time.perf_counter() - started, interrupted
    )


def check_collectives(spec: Spec, data: Contributions) -> None:
    """Fail before anything runs if a group selects nobody or a count exceeds the users."""
    for group in spec.collectives.groups:
        group_members(data, group)
    too_many = [c for c in spec.collectives.counts if c > data.n_contributors]
    if too_many:
        raise DataleverError(
            f"Collective counts {too_many} exceed the {data.n_contributors} users of {data.name}.",
            "use smaller counts, or sizes as fractions of users.",
        )
