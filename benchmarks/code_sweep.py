"""Code strike sweeps: datalever's Kneser–Ney engine, its fast path and plain refits, and NLTK.

The sweep is the opt-out study of ``examples/opt-out-stdlib.toml`` reduced to cross-entropy: an
n-gram language model (order 3 by default, ``--order``) trained on Python source, one
contributor per top-level package or module family, and random strikes of 1, 5, 10 and 20 % of
the contributors (``--samples`` draws each) on the one fold of the task's ``holdout`` protocol
(each contributor's files split 80/20 by ``contributor_holdout``). Each scenario is judged by
``bits_per_token`` for everyone, the participants and the non-participants (each group's held-out
predictions pooled: every file's tokens and its end of file). The corpora (``--corpora``):

* ``stdlib``: the running Python's standard library (``load_stdlib()``, tests left out);
* ``small``: eight small standard-library packages (``SMALL``), and ``tiny`` (``--tiny``): six
  of them (``TINY``), each written as a JSON-lines table to a temporary folder and loaded with
  ``load_table``. With so few contributors, a size that rounds to nobody (``round(size × n)``,
  as ``draw`` rounds) is left out on every side, and the script says which.

Three sides run on the same scenarios in the same run:

* **datalever**: the engine, ``run_spec(spec, store, data=..., jobs=1)`` with the
  ``kneser_ney`` learner into a new SQLite store (in ``/dev/shm``, in memory, unless
  ``--store-dir`` says otherwise). Its time is the whole call: the plan, the fold's set-up (the
  fast path's n-gram tables and statistics, the judge, the no-action model and the unigram
  reference, both judged), drawing every collective, fitting by the exact fast path (the base's
  counts updated by the struck files' n-grams), judging every group, and storing every result.
* **datalever plain**: the same call with ``path="plain"``: a refit of the counts on every
  scenario's training files. What the fast path saves.
* **NLTK** (``nltk.lm.KneserNeyInterpolated(order)``, the peer): per scenario, a new model fitted
  on the remaining training files' token strings, padded by ``padded_everygram_pipeline`` (each
  file a sentence); then, for every held-out file, ``model.logscore(token, context)`` of each of
  its tokens and of one ``</s>``, with ``order - 1`` ``<s>`` before the file, which is
  datalever's padding (NLTK also trains on ``order - 1`` ``</s>``: it pads both ends alike). A
  (token, context) pair is scored once per scenario and remembered, as any user would do; the
  group means are computed with numpy. The token strings are decoded once, outside its timing.
  It fits no no-action model and no reference, and draws nothing: all of which favours NLTK.

NLTK is pure Python, and its Kneser–Ney recomputes continuation counts by scanning every
context of the order above at every query: about 190 ms per query on the standard library
(240,000 held-out positions), so one scenario would take hours. It therefore runs on
``--peer-scenarios`` scenarios (2 by default; the first draws, smallest sizes first), scored in
full on the small corpora; on ``stdlib`` it fits each of them in full but scores only the first
``--stdlib-peer-queries`` distinct queries (100), so its time per scenario there is a measured
lower bound (marked ``≥``). The estimate of a full stdlib scenario, from the measured rate, is
printed separately and labelled as such.

Every side runs on one core (BLAS and OpenMP pinned to one thread with threadpoolctl; NLTK is
single-threaded Python). Times are seconds per scenario: the whole call over its struck
scenarios, the median over ``--repeats`` runs (3; every engine run starts from a fresh store and
fresh fold contexts, and a warm-up run on another seed comes first), in wall time and in CPU
seconds. Ratios are how many times faster the fast path is: plain / fast, and NLTK / fast.
Another table times datalever's parts outside the engine (the fast path's preparation, once per
fold; per scenario, a fast fit, a plain fit and judging) and NLTK's (fit and scoring).

Checks (exit status 1 if any fails):

* fast against plain: every value the two engine runs stored (value, baseline and reference of
  every scenario, the no-action one included, and group) equal to 1e-9 relative (both missing
  counts as equal);
* datalever's per-position bits, recomputed outside the engine for the NLTK scenarios, give
  the stored group values (1e-9 relative);
* NLTK (a sanity bound only): NLTK's ``KneserNeyInterpolated`` is interpolated Kneser–Ney with
  one discount (0.1) for every count, not Chen & Goodman's *modified* Kneser–Ney with three
  discounts per order; and its lowest order has no uniform floor, so a token never seen in
  training gets probability 0 (infinite bits). Its group means are therefore taken over the
  positions it gives a positive probability (the others are counted and printed), and set
  beside datalever's over the same positions: both must be finite and within a factor of 2.

    python benchmarks/code_sweep.py            # the full run: about 10 minutes
    python benchmarks/code_sweep.py --tiny     # six packages, one draw, one run: seconds
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nltk
import numpy as np
from nltk.lm import KneserNeyInterpolated
from nltk.lm.preprocessing import padded_everygram_pipeline
from threadpoolctl import threadpool_limits

from datalever.collectives import draw
from datalever.core.delta import Delta
from datalever.core.task import Fold
from datalever.engine.runner import run_spec
from datalever.engine.scenario_eval import spec_folds
from datalever.scenarios import Scenario, plan
from datalever.spec import Spec, spec_from_dict
from datalever.store import ResultsStore
from datalever.tasks import make_learner, task_of
from datalever.tasks.code.corpus import CodeCorpus, load_stdlib, load_table, stdlib_sources

SIZES = (0.01, 0.05, 0.1, 0.2)
GROUPS = ("everyone", "participants", "non-participants")
METRIC = "bits_per_token"
#: Small corpora: standard-library packages of 1,000 to 8,000 tokens, three or more files each.
SMALL = ("json", "dbm", "curses", "sqlite3", "ensurepip", "wsgiref", "tomllib", "zoneinfo")
TINY = SMALL[:6]
#: Fast against plain, and datalever's recomputed bits against the stored values: relative.
TOLERANCE = 1e-9
#: NLTK against datalever over the same positions: a sanity bound, not agreement.
PEER_FACTOR = 2.0


def relative_gap(a: float, b: float) -> float:
    """``|a - b|`` relative to the larger magnitude; 0 when both are missing (NaN)."""
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


@dataclass
class Timed:
    wall: float
    cpu: float


def timed(work: Callable[[], object]) -> tuple[object, Timed]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = work()
    return out, Timed(time.perf_counter() - wall, time.process_time() - cpu)


# --- corpora and the sweep --------------------------------------------------------------------


def write_table(packages: tuple[str, ...], path: Path) -> Path:
    """The standard library's files of ``packages`` (as ``load_stdlib`` finds them, tests left
    out), one JSON line each: contributor, path and text."""
    wanted = set(packages)
    with path.open("w", encoding="utf-8") as out:
        for source in stdlib_sources():
            if source.contributor in wanted and source.data is not None:
                text = source.data.decode("utf-8", errors="surrogatepass")
                row = {"contributor": source.contributor, "path": source.path, "text": text}
                out.write(json.dumps(row) + "\n")
    return path


def load(name: str, folder: Path) -> tuple[CodeCorpus, dict]:
    """A corpus by name, and the ``[data]`` of a spec that names it."""
    if name == "stdlib":
        return load_stdlib(), {"dataset": "python-stdlib"}
    packages = {"small": SMALL, "tiny": TINY}[name]
    path = write_table(packages, folder / f"stdlib-{name}.jsonl")
    columns = {"contributor": "contributor", "path": "path", "text": "text"}
    return load_table(path, cache=False), {"dataset": str(path), "columns": columns}


def reaching(n_contributors: int) -> tuple[list[float], list[float]]:
    """The sizes whose strike reaches at least one contributor (as ``draw`` rounds), and the
    others."""
    kept = [s for s in SIZES if round(s * n_contributors) > 0]
    return kept, [s for s in SIZES if s not in kept]


def sweep_spec(data: dict, sizes: list[float], samples: int, order: int, seed: int) -> Spec:
    return spec_from_dict(
        {
            "name": "code sweep",
            "seed": seed,
            "data": data,
            "protocol": {"kind": "holdout"},
            "learners": [{"name": "kneser_ney", "order": order}],
            "levers": [{"kind": "strike"}],
            "collectives": {"sizes": sizes, "samples": samples},
            "evaluation": {"metrics": [METRIC], "groups": list(GROUPS)},
        }
    )


@dataclass
class Scenarios:
    """The sweep's struck scenarios as the engine draws them: their deltas and the strikers."""

    folds: list[Fold]
    plan: list[Scenario]
    deltas: list[Delta]
    participants: list[np.ndarray]

    @classmethod
    def of(cls, spec: Spec, data: CodeCorpus) -> Scenarios:
        folds = spec_folds(spec, data)
        struck = [sc for sc in plan(spec, data.checksum()) if not sc.is_baseline]
        deltas, participants = [], []
        for sc in struck:
            d = draw(sc.collective, data, sc.sample, spec.seed)
            rng = sc.collective.seed_for(spec.seed, sc.sample, stream=1)
            deltas.append(sc.lever.delta(data, d.participants, rng, folds[sc.fold].train))
            participants.append(d.participants)
        return cls(folds, struck, deltas, participants)

    def for_peer(self, count: int) -> list[int]:
        """The first ``count`` scenarios by draw, then size: the smallest sizes first."""
        order = sorted(
            range(len(self.plan)),
            key=lambda i: (self.plan[i].sample, self.plan[i].collective.size),
        )
        return order[:count]


def scenario_key(sc: Scenario) -> tuple[str, int, int]:
    return sc.collective.label, sc.sample, sc.fold


# --- datalever --------------------------------------------------------------------------------


def engine_sweep(spec: Spec, data: CodeCorpus, folder: Path, path: str) -> tuple[dict, str, Timed]:
    """Run the sweep through the engine into a new store; every stored row's value, baseline
    and reference by (lever, scenario, group, metric), the fitting path, and the time. A
    shallow copy of the corpus makes the engine build its fold contexts afresh."""
    store = ResultsStore(folder / f"{time.perf_counter_ns()}.sqlite")
    report, took = timed(lambda: run_spec(spec, store, data=copy.copy(data), jobs=1, path=path))
    rows = store.results(report.run_id)
    store.engine.dispose()
    values = {}
    for r in rows.itertuples():
        key = (r.lever, r.collective, r.sample, r.fold, r.eval_group, r.metric)
        values[key] = (float(r.value), float(r.baseline), float(r.reference))
    struck = rows[rows.lever != "none"]
    return values, ",".join(sorted(struck.path.unique())), took


@dataclass
class Breakdown:
    """Seconds of datalever's parts, outside the engine: the fast path's preparation (per
    fold), and per scenario a fast fit, a plain fit and judging (medians over scenarios)."""

    prepare: list[float] = field(default_factory=list)
    fast: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    judge: list[float] = field(default_factory=list)
    #: Per strike size, every scenario's (fast fit, plain fit) seconds, over all runs.
    by_size: dict[float, list[tuple[float, float]]] = field(default_factory=dict)


def breakdown(spec: Spec, data: CodeCorpus, scenarios: Scenarios, into: Breakdown) -> None:
    """Time the fast path's preparation and every scenario's fast fit, plain fit and judging."""
    learner = make_learner(spec.learners[0].name, spec.learners[0].params())
    fold = scenarios.folds[0]
    base = data.training_set(fold.train)
    judge = task_of(spec).judge(spec, data, fold)
    fast, took = timed(lambda: learner.fast_path(base))
    into.prepare.append(took.wall)
    fast_s, plain_s, judge_s = [], [], []
    for delta, participants, sc in zip(
        scenarios.deltas, scenarios.participants, scenarios.plan, strict=True
    ):
        model, took = timed(lambda delta=delta: next(iter(fast.fit_many([delta]))))
        fast_s.append(took.wall)
        _, plain_took = timed(lambda delta=delta: learner.fit(delta.apply(base)))
        plain_s.append(plain_took.wall)
        into.by_size.setdefault(sc.collective.size, []).append((took.wall, plain_took.wall))
        member = np.zeros(data.n_contributors, dtype=bool)
        member[participants] = True
        groups = {"everyone": np.ones_like(member), "participants": member}
        groups["non-participants"] = ~member

        def judged(model=model, groups=groups) -> None:
            values = judge.evaluate(model, learner)
            for g in GROUPS:
                values[METRIC].over(groups[g])

        _, took = timed(judged)
        judge_s.append(took.wall)
    into.fast.append(statistics.median(fast_s))
    into.plain.append(statistics.median(plain_s))
    into.judge.append(statistics.median(judge_s))


# --- NLTK -------------------------------------------------------------------------------------


@dataclass
class PeerFold:
    """One fold's files as token strings (decoded once, outside any timing) and the owner of
    every held-out predicted position (each file's tokens, then its end of file)."""

    train: list[list[str]]
    test: list[list[str]]
    owner: np.ndarray

    @classmethod
    def of(cls, data: CodeCorpus, fold: Fold) -> PeerFold:
        words = data.vocabulary.tokens
        files = data.files
        train = [[words[t] for t in files.file(int(i))] for i in fold.train]
        test = [[words[t] for t in files.file(int(i))] for i in fold.test]
        lengths = files.lengths[fold.test] + 1
        return cls(train, test, np.repeat(files.contributors[fold.test], lengths).astype(int))

    def queries(self, order: int):
        """Every held-out (token, context) pair NLTK is asked, position by position."""
        for tokens in self.test:
            history = ["<s>"] * (order - 1) + tokens + ["</s>"]
            for i in range(order - 1, len(history)):
                yield history[i], tuple(history[i - order + 1 : i])


def nltk_fit(order: int, files: list[list[str]]) -> KneserNeyInterpolated:
    model = KneserNeyInterpolated(order)
    grams, vocabulary = padded_everygram_pipeline(order, files)
    model.fit(grams, vocabulary)
    return model


def nltk_log2(
    model: KneserNeyInterpolated, prep: PeerFold, order: int, limit: int | None
) -> tuple[np.ndarray, int]:
    """``log2 p`` of every held-out position (``-inf`` where NLTK gives 0), each distinct
    (token, context) scored once; with a ``limit`` of distinct queries, the positions before
    it is reached. Also the number of distinct queries scored."""
    memo: dict[tuple[str, tuple[str, ...]], float] = {}
    out = []
    for word, context in prep.queries(order):
        value = memo.get((word, context))
        if value is None:
            if limit is not None and len(memo) >= limit:
                break
            value = memo[(word, context)] = model.logscore(word, context)
        out.append(value)
    return np.asarray(out, dtype=np.float64), len(memo)


def group_masks(owner: np.ndarray, participants: np.ndarray) -> dict[str, np.ndarray]:
    member = np.isin(owner, participants)
    return {"everyone": np.ones(len(owner), dtype=bool), "participants": member} | {
        "non-participants": ~member
    }


@dataclass
class PeerRun:
    """One NLTK scenario: its time and parts, the bits of the positions it scored (the first
    ``len(bits)``; all of them when ``complete``) and their group means."""

    index: int
    took: Timed
    fit: float
    score: float
    queries: int
    bits: np.ndarray
    complete: bool
    values: dict[str, float]


def nltk_scenario(
    order: int, prep: PeerFold, delta: Delta, participants: np.ndarray, limit: int | None, i: int
) -> PeerRun:
    parts = {}

    def run() -> dict[str, float]:
        started = time.perf_counter()
        keep = np.ones(len(prep.train), dtype=bool)
        keep[delta.removed] = False
        model = nltk_fit(order, [prep.train[j] for j in np.flatnonzero(keep)])
        parts["fit"] = time.perf_counter() - started
        started = time.perf_counter()
        log2, parts["queries"] = nltk_log2(model, prep, order, limit)
        parts["score"] = time.perf_counter() - started
        bits = -log2
        parts["bits"] = bits
        finite = np.isfinite(bits)
        values = {}
        for g, chosen in group_masks(prep.owner[: len(bits)], participants).items():
            chosen = chosen & finite
            if chosen.any():
                values[g] = float(bits[chosen].sum() / chosen.sum())
        return values

    values, took = timed(run)
    gc.collect()  # NLTK's counts are millions of objects; freed outside any timing
    complete = len(parts["bits"]) == len(prep.owner)
    return PeerRun(
        i, took, parts["fit"], parts["score"], parts["queries"], parts["bits"], complete, values
    )


# --- the comparison ---------------------------------------------------------------------------


@dataclass
class Row:
    corpus: str
    files: int
    tokens: int
    contributors: int
    scenarios: int
    left_out: list[float]
    peer_scenarios: int
    held_out: int = 0
    distinct_queries: int = 0
    path: str = ""
    fast: list[Timed] = field(default_factory=list)
    plain: list[Timed] = field(default_factory=list)
    peer: list[Timed] = field(default_factory=list)
    peer_runs: list[list[PeerRun]] = field(default_factory=list)
    parts: Breakdown = field(default_factory=Breakdown)
    compared: int = 0
    fast_plain_gap: float = 0.0
    recomputed_gap: float = 0.0
    checks: list[tuple[str, bool]] = field(default_factory=list)
    comparison: list[tuple] = field(default_factory=list)

    def per_scenario(self, side: list[Timed], count: int, cpu: bool = False) -> float:
        return statistics.median((t.cpu if cpu else t.wall) / count for t in side)

    @property
    def peer_complete(self) -> bool:
        return all(r.complete for r in self.peer_runs[0])


def fast_against_plain(row: Row, fast: dict, plain: dict) -> None:
    """Every stored value of the fast run against the plain run's."""
    if fast.keys() != plain.keys():
        row.fast_plain_gap = math.inf
    for key in fast.keys() & plain.keys():
        for a, b in zip(fast[key], plain[key], strict=True):
            row.compared += 1
            row.fast_plain_gap = max(row.fast_plain_gap, relative_gap(a, b))


def peer_against_datalever(
    row: Row, spec: Spec, data: CodeCorpus, scenarios: Scenarios, stored: dict
) -> None:
    """datalever's bits per position for the NLTK scenarios (a plain fit, outside any
    timing): their group means must be the stored values; over the positions NLTK scored and
    gave a positive probability, they are set beside NLTK's."""
    learner = make_learner(spec.learners[0].name, spec.learners[0].params())
    fold = scenarios.folds[0]
    base = data.training_set(fold.train)
    test = data.training_set(fold.test)
    owner = np.repeat(test.contributors, test.lengths + 1).astype(int)
    sane = True
    for run in row.peer_runs[0]:
        i = run.index
        model = learner.fit(scenarios.deltas[i].apply(base))
        ours = -np.asarray(model.log2_prob(test))
        masks = group_masks(owner, scenarios.participants[i])
        covered = len(run.bits)
        finite = np.isfinite(run.bits)
        for g in GROUPS:
            key = ("strike", *scenario_key(scenarios.plan[i]), g, METRIC)
            value = stored[key][0]
            everything = masks[g]
            mine = float(ours[everything].sum() / everything.sum()) if everything.any() else np.nan
            row.recomputed_gap = max(row.recomputed_gap, relative_gap(mine, value))
            same = masks[g][:covered] & finite
            if not same.any():
                continue
            ours_same = float(ours[:covered][same].sum() / same.sum())
            theirs = run.values[g]
            zero = int((masks[g][:covered] & ~finite).sum())
            scored = int(masks[g][:covered].sum())
            ok = (
                math.isfinite(ours_same)
                and math.isfinite(theirs)
                and 1 / PEER_FACTOR <= theirs / ours_same <= PEER_FACTOR
            )
            sane &= ok
            label = scenarios.plan[i].collective.label
            row.comparison.append(
                (label, scenarios.plan[i].sample, g, value, scored, zero, ours_same, theirs, ok)
            )
    row.checks.append(
        (
            f"datalever's bits recomputed = stored (max rel. gap {row.recomputed_gap:.1e})",
            row.recomputed_gap <= TOLERANCE,
        )
    )
    row.checks.append(
        (f"NLTK within {PEER_FACTOR:g}× of datalever on the same positions, both finite", sane)
    )


def compare(name: str, args: argparse.Namespace, folder: Path) -> Row:
    data, source = load(name, folder)
    sizes, left_out = reaching(data.n_contributors)
    spec = sweep_spec(source, sizes, args.samples, args.order, args.seed)
    scenarios = Scenarios.of(spec, data)
    chosen = scenarios.for_peer(args.peer_scenarios)
    row = Row(
        name,
        len(data),
        data.n_tokens,
        data.n_contributors,
        len(scenarios.plan),
        left_out,
        len(chosen),
    )
    prep = PeerFold.of(data, scenarios.folds[0])
    row.held_out = len(prep.owner)
    row.distinct_queries = len(set(prep.queries(args.order)))
    limit = args.stdlib_peer_queries if name == "stdlib" else None
    # A warm-up on another seed, so lazy imports and first calls are charged to no side.
    warm = sweep_spec(source, sizes[-1:], 1, args.order, args.seed + 1)
    for path in ("auto", "plain"):
        engine_sweep(warm, data, folder, path)
    for repeat in range(args.repeats):
        print(f"  {name}: run {repeat + 1} of {args.repeats}", file=sys.stderr)
        fast, row.path, took = engine_sweep(spec, data, folder, "auto")
        row.fast.append(took)
        plain, _, took = engine_sweep(spec, data, folder, "plain")
        row.plain.append(took)
        runs = []
        cpu, wall = 0.0, 0.0
        for i in chosen:
            run = nltk_scenario(
                args.order, prep, scenarios.deltas[i], scenarios.participants[i], limit, i
            )
            runs.append(run)
            cpu, wall = cpu + run.took.cpu, wall + run.took.wall
        row.peer.append(Timed(wall, cpu))
        row.peer_runs.append(runs)
        breakdown(spec, data, scenarios, row.parts)
        if repeat == 0:
            fast_against_plain(row, fast, plain)
            row.checks.append(
                (
                    f"fast = plain: {row.compared} stored values, max rel. gap "
                    f"{row.fast_plain_gap:.1e}",
                    row.fast_plain_gap <= TOLERANCE,
                )
            )
            peer_against_datalever(row, spec, data, scenarios, fast)
    return row


def seconds(value: float, width: int = 10, bound: bool = False) -> str:
    text = f"{'≥' if bound else ''}{value:.3g}"
    return f"{text:>{width}}"


def times(ratio: float, bound: bool = False) -> str:
    """A ratio as ``2.3×``, ``133×`` or ``3,030×`` (``≥`` before a lower bound)."""
    text = f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}"
    return f"{'≥' if bound else ''}{text}×"


def peak_gib() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def report(rows: list[Row], args: argparse.Namespace, store_dir: str) -> bool:
    sizes = ", ".join(f"{100 * s:g} %" for s in SIZES)
    print(
        f"\nKneser–Ney of order {args.order}; strikes of {sizes}"
        f" of contributors, {args.samples} draw(s) per size, on the holdout fold; "
        f"{METRIC} for {', '.join(GROUPS)};\nstore in {store_dir}; medians of {args.repeats} "
        f"run(s); one core (BLAS and OpenMP on one thread); NLTK {nltk.__version__}"
    )
    for r in rows:
        note = f"; sizes striking nobody, left out: {r.left_out}" if r.left_out else ""
        print(
            f"  {r.corpus}: {r.files:,} files, {r.tokens:,} tokens, {r.contributors} "
            f"contributors, {r.held_out:,} held-out positions ({r.distinct_queries:,} distinct "
            f"(token, context) pairs){note}"
        )
    print(
        "\nseconds per scenario (whole sweep / its scenarios); NLTK on its scenarios only;"
        " ≥: NLTK scored only part of the held-out set,\nso its time is a lower bound; ratios:"
        " how many times faster the fast path is (wall; CPU seconds)"
    )
    head = (
        f"{'corpus':<8} {'path':<22} {'scen.':>5} {'datalever':>10} {'plain':>10} "
        f"{'NLTK scen.':>10} {'NLTK':>10} | {'vs plain':>8} {'(CPU)':>7} {'vs NLTK':>9} "
        f"{'(CPU)':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        bound = not r.peer_complete
        fast = r.per_scenario(r.fast, r.scenarios)
        fast_cpu = r.per_scenario(r.fast, r.scenarios, cpu=True)
        plain = r.per_scenario(r.plain, r.scenarios)
        plain_cpu = r.per_scenario(r.plain, r.scenarios, cpu=True)
        peer = r.per_scenario(r.peer, r.peer_scenarios)
        peer_cpu = r.per_scenario(r.peer, r.peer_scenarios, cpu=True)
        print(
            f"{r.corpus:<8} {r.path:<22} {r.scenarios:>5} {seconds(fast)} {seconds(plain)} "
            f"{r.peer_scenarios:>10} {seconds(peer, bound=bound)} | {times(plain / fast):>8} "
            f"{times(plain_cpu / fast_cpu):>7} {times(peer / fast, bound):>9} "
            f"{times(peer_cpu / fast_cpu, bound):>9}"
        )
    for r in rows:
        if r.peer_complete:
            continue
        runs = [run for runs in r.peer_runs for run in runs]
        rate = statistics.median(run.score / run.queries for run in runs)
        fit = statistics.median(run.fit for run in runs)
        full = fit + rate * r.distinct_queries
        print(
            f"\n{r.corpus}: NLTK measured a full fit ({fit:.3g} s, median) and the first "
            f"{runs[0].queries} distinct queries of {r.distinct_queries:,} "
            f"({1e3 * rate:.3g} ms each, median).\n  Estimate, not measured: a full scenario "
            f"would take about {full:,.0f} s ({full / 3600:.3g} h), "
            f"{full / r.per_scenario(r.fast, r.scenarios):,.0f}× datalever's time."
        )
    print(
        "\nwhere the time goes, ms per scenario (prepare: once per fold). datalever: the whole"
        " engine run; the fast path's\npreparation, a fast fit, a plain fit and judging (medians"
        " over scenarios, then runs); rest = engine - prepare / scenarios\n- fast fit - judge"
        " (the no-action and reference models, drawing, rows, storing). NLTK: fit, scoring."
    )
    head = (
        f"{'corpus':<8} {'engine':>9} {'prepare':>9} {'fast fit':>9} {'plain fit':>9} "
        f"{'judge':>9} {'rest':>9} | {'NLTK':>9} {'its fit':>9} {'scoring':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        p = r.parts
        engine = r.per_scenario(r.fast, r.scenarios)
        prepare, fit = statistics.median(p.prepare), statistics.median(p.fast)
        judge = statistics.median(p.judge)
        rest = engine - prepare / r.scenarios - fit - judge
        # NLTK's parts: their mean over its scenarios in each run, then the median of runs.
        peer_fit = statistics.median(statistics.mean(x.fit for x in runs) for runs in r.peer_runs)
        peer_score = statistics.median(
            statistics.mean(x.score for x in runs) for runs in r.peer_runs
        )
        print(
            f"{r.corpus:<8} {1e3 * engine:9.1f} {1e3 * prepare:9.1f} {1e3 * fit:9.1f} "
            f"{1e3 * statistics.median(p.plain):9.1f} {1e3 * judge:9.1f} {1e3 * rest:9.1f} | "
            f"{1e3 * r.per_scenario(r.peer, r.peer_scenarios):9.0f} "
            f"{1e3 * peer_fit:9.0f} {1e3 * peer_score:9.0f}"
        )
    print("\nfast fit against a refit by strike size, ms (medians over draws and runs)")
    for r in rows:
        for size, pairs in sorted(r.parts.by_size.items()):
            fast = statistics.median(f for f, _ in pairs)
            plain = statistics.median(p for _, p in pairs)
            print(
                f"  {r.corpus:<8} {100 * size:5.3g} %  fast {1e3 * fast:7.1f}  refit "
                f"{1e3 * plain:7.1f}  {plain / fast:6.0f}×"
            )
    print(f"\npeak memory of this process (datalever's and NLTK's sides): {peak_gib():.2f} GiB")
    print(
        f"\n{METRIC}, NLTK's scenarios (first run): datalever's stored value (all positions);"
        " the positions NLTK scored and those it\ngives probability 0 (tokens never seen in"
        " training); datalever and NLTK over the positions NLTK gives a positive probability"
    )
    head = (
        f"{'corpus':<8} {'scenario':<16} {'group':<16} {'stored':>8} {'positions':>9} "
        f"{'p = 0':>6} {'datalever':>9} {'NLTK':>8} {'NLTK/dl':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        for label, sample, g, value, scored, zero, ours, theirs, ok in r.comparison:
            print(
                f"{r.corpus:<8} {f'{label} #{sample}':<16} {g:<16} {value:8.3f} {scored:>9,} "
                f"{zero:>6,} {ours:9.3f} {theirs:8.3f} {theirs / ours:7.3f}"
                f"{'' if ok else '  out of bounds'}"
            )
    print("\nchecks")
    for r in rows:
        for text, ok in r.checks:
            print(f"  {r.corpus:<8} {text}  {'ok' if ok else 'FAILED'}")
    return all(ok for r in rows for _, ok in r.checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpora", default="stdlib,small", help="of stdlib, small, tiny (default stdlib,small)"
    )
    parser.add_argument("--order", type=int, default=3, help="the n of the n-grams (2-5)")
    parser.add_argument("--samples", type=int, default=10, help="draws per strike size")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    parser.add_argument(
        "--peer-scenarios", type=int, default=2, help="scenarios NLTK runs, per corpus"
    )
    parser.add_argument(
        "--stdlib-peer-queries",
        type=int,
        default=100,
        help="distinct (token, context) pairs NLTK scores per stdlib scenario",
    )
    parser.add_argument(
        "--store-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the engine's temporary SQLite stores go (default: /dev/shm, in memory)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="six packages, one draw, one run: a smoke run"
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.corpora, args.samples, args.repeats, args.peer_scenarios = "tiny", 1, 1, 1
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    if not corpora or not set(corpora) <= {"stdlib", "small", "tiny"}:
        parser.error("--corpora names stdlib, small or tiny")
    if not 2 <= args.order <= 5:
        parser.error("--order must be from 2 to 5")
    if min(args.samples, args.repeats, args.peer_scenarios, args.stdlib_peer_queries) < 1:
        parser.error("--samples, --repeats, --peer-scenarios and --stdlib-peer-queries must be ≥ 1")
    rows = []
    with (
        threadpool_limits(1),
        tempfile.TemporaryDirectory(dir=args.store_dir) as folder,
    ):
        for name in corpora:
            rows.append(compare(name, args, Path(folder)))
    return 0 if report(rows, args, str(Path(folder).parent)) else 1


if __name__ == "__main__":
    sys.exit(main())
