"""Bad inputs of every kind a user can give: specs, learner parameters, flags, stores.

Each :class:`Case` is one command line with the files it needs. ``expect`` says what a correct
datalever does with it: ``"refused"`` (exit 2 with one clear paragraph, the store untouched) or
``"either"`` (odd but legal: exit 0 or a clear refusal). Whatever the case, there must be no
traceback and no hang. The harness (:mod:`tests.fuzz.harness`) runs them; ``tests/test_fuzz.py``
runs a seeded sample in CI and ``python -m tests.fuzz`` runs all of them.

Paths in a case are relative to the case's own folder; ``{store}`` in an argument stands for a
copy of a real results store (one finished run), whose bytes must not change when a case is
refused.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import tomli_w

STORE = "{store}"


@dataclass
class Case:
    name: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    expect: str = "refused"  # or "either"
    env: dict[str, str] = field(default_factory=dict)


#: A valid spec that runs in about a second (item_mean, one fold, one size, one sample).
BASE_SPEC: dict = {
    "name": "fuzz base",
    "seed": 1,
    "data": {"dataset": "movielens-100k"},
    "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
    "learners": [{"name": "item_mean"}],
    "lever": {"kind": "strike", "fraction": 1.0},
    "collectives": {"sizes": [0.5], "samples": 1, "participation": 0.5},
    "evaluation": {"metrics": ["ndcg@10"], "groups": ["everyone"], "confidence": 0.95},
}

HUGE = 10**30
NUMBER_GARBAGE = [True, False, "0.5", "", [], {}, math.inf, -math.inf, math.nan, 1e308, HUGE]
STRING_GARBAGE = [1, True, 1.5, [], {}, ""]


def _with(path: tuple, value) -> dict:
    spec = copy.deepcopy(BASE_SPEC)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def _dump(spec: dict) -> bytes:
    return tomli_w.dumps(spec).encode()


def _spec_case(name: str, spec: dict | bytes, expect: str = "refused") -> Case:
    blob = spec if isinstance(spec, bytes) else _dump(spec)
    return Case(
        f"spec: {name}", ["run", "spec.toml", "--store", STORE], {"spec.toml": blob}, expect
    )


#: Spec fields holding numbers, with values out of their range (beyond the type garbage).
NUMBER_FIELDS: dict[tuple, list] = {
    ("seed",): [-1, 2**64],
    ("protocol", "folds"): [0, 1, 21, 10**9],
    ("protocol", "run_folds"): [0, -1, 21, 1_000_000_000],
    ("protocol", "test_fraction"): [0, 1, -0.5, 2],
    ("protocol", "list_length"): [0, -3, 10**9],
    ("lever", "fraction"): [0, -0.1, 1.5],
    ("collectives", "samples"): [0, -1, 1_000_000_000, 2**63 - 1],
    ("collectives", "participation"): [0, 1.01, -1],
    ("evaluation", "confidence"): [0.5, 1, 0, 2],
}

STRING_FIELDS: dict[tuple, list] = {
    ("name",): ["x" * 5000],
    ("data", "dataset"): ["no-such-dataset", "x" * 10_000_000, "/nonexistent/ratings.csv"],
    ("protocol", "kind"): ["temporal", "DATA-STRIKES"],
    ("lever", "kind"): ["flood", "Strike"],
}


def spec_cases() -> Iterator[Case]:
    for path, values in NUMBER_FIELDS.items():
        for value in NUMBER_GARBAGE + values:
            yield _spec_case(f"{'.'.join(path)} = {value!r:.40}", _with(path, value))
    for path, values in STRING_FIELDS.items():
        for value in STRING_GARBAGE + values:
            yield _spec_case(f"{'.'.join(path)} = {value!r:.40}", _with(path, value))
    lists = {
        ("collectives", "sizes"): [[-0.1], [1.5], [True], ["0.5"], [math.nan], [math.inf], "0.5"],
        ("collectives", "counts"): [[-1], [1.5], [True], [10**12], [HUGE]],
        ("collectives", "groups"): [
            ["gender:X"],
            ["occupation:astronaut"],
            ["file:missing.txt"],
            ["nonsense"],
            [""],
            [1],
            ["x" * 5000],
        ],
        ("evaluation", "metrics"): [
            ["NDCG@10", "ndcg@10 "],
            ["ndcg@" + "9" * 70],
            ["ndcg@0"],
            ["ndcg"],
            ["rmse@3"],
            ["accuracy"],
            [],
            [1],
            ["[/]"],
        ],
        ("evaluation", "groups"): [["somebody"], [], [True]],
        ("learners",): [[], [{"name": "deep_magic"}], [{}], [{"name": 3}], "item_mean"],
    }
    for path, values in lists.items():
        for value in values:
            yield _spec_case(f"{'.'.join(path)} = {value!r:.40}", _with(path, value))
    yield _spec_case("a learner twice", _with(("learners",), [{"name": "item_mean"}] * 2))
    strike = {"kind": "strike"}
    for levers in (
        [],
        [strike, strike],
        [{"kind": "flood"}],
        [{"kind": "strike", "fraction": True}],
        [{"kind": "strike", "fraction": math.nan}],
        [{"kind": "boycott", "fraction": 2}],
        [{"kind": "strike", "colour": "red"}],
        [{"kind": 1}],
        [{}] * 21,
        "strike",
        [1],
    ):
        without = {k: v for k, v in BASE_SPEC.items() if k != "lever"}
        yield _spec_case(f"levers = {levers!r:.40}", {**without, "levers": levers})
    yield _spec_case("[lever] and [[levers]]", {**BASE_SPEC, "levers": [strike]})
    yield _spec_case("no collectives", _with(("collectives",), {"samples": 2}))
    yield _spec_case("unknown table", {**BASE_SPEC, "levers": {"kind": "strike"}})
    yield _spec_case("unknown key", _with(("data", "colour"), "blue"))
    yield _spec_case(
        "rmse under holdout",
        _with(("evaluation", "metrics"), ["rmse"]) | {"protocol": {"kind": "holdout"}},
    )
    yield _spec_case(
        "question on a metric not run",
        {**BASE_SPEC, "question": {"metric": "precision@10", "delta": "-2%"}},
    )
    yield _spec_case(
        "question with a bad delta",
        {**BASE_SPEC, "question": {"metric": "ndcg@10", "delta": "lots"}},
    )
    yield _spec_case(
        "too many scenarios",
        _with(("collectives", "sizes"), [i / 1000 for i in range(1, 1000)])
        | {"collectives": {"sizes": [i / 1000 for i in range(1, 1000)], "samples": 10_000}},
    )
    # raw bytes: not TOML, not UTF-8, too deep, too big, empty
    yield _spec_case("empty file", b"")
    yield _spec_case("not TOML", b"this is not = = toml")
    yield _spec_case("latin-1 bytes", "name = 'caf\xe9'\n".encode("latin-1"))
    yield _spec_case("binary", bytes(range(256)) * 4)
    yield _spec_case("deeply nested array", b"a = " + b"[" * 100_000 + b"]" * 100_000)
    yield _spec_case("deeply nested tables", b"a = " + b"{b = " * 5000 + b"1" + b"}" * 5000)
    yield _spec_case("huge file", b"# " + b"x" * 2_000_000 + b"\n")
    yield _spec_case(
        "a table of 100k keys", "\n".join(f"k{i} = {i}" for i in range(100_000)).encode()
    )
    # odd but legal
    yield _spec_case("name with markup", _with(("name",), "[/] [bold]x"), "either")
    yield _spec_case("byte-order mark", b"\xef\xbb\xbf" + _dump(BASE_SPEC), "either")


#: Learner parameters that must be refused: wrong types, out of range, absurd sizes.
LEARNER_PARAMS: dict[str, dict[str, list]] = {
    "biased_mf": {
        "n_factors": [-1, 0, "x", 1.5, 10**9, True],
        "n_epochs": [0, -5, 10_000_000, 2.5],
        "lr": [math.nan, math.inf, -0.1, 0, "fast"],
        "reg": [math.nan, math.inf, -1],
        "init_std": [math.nan, math.inf, -0.1],
        "unknown_knob": [1],
    },
    "item_knn": {"k": [0, -1, 1.5, True, 10**12]},
    "user_knn": {"k": [0, -1, "40"]},
    "ease": {"regularization": [math.inf, math.nan, -1, "big"]},
}


def learner_cases() -> Iterator[Case]:
    for learner, params in LEARNER_PARAMS.items():
        for param, values in params.items():
            for value in values:
                spec = _with(("learners",), [{"name": learner, param: value}])
                yield _spec_case(f"{learner}.{param} = {value!r:.30}", spec)


def flag_cases() -> Iterator[Case]:
    """Bad flags for every command (click refuses some itself, with exit 2)."""
    spec = {"spec.toml": _dump(BASE_SPEC)}
    for jobs in ["0", "-1", "99999999999999999999", "two", "nan"]:
        yield Case(
            f"run --jobs {jobs}", ["run", "spec.toml", "--store", STORE, "--jobs", jobs], spec
        )
    yield Case("run --path fast", ["run", "spec.toml", "--store", STORE, "--path", "fast"], spec)
    yield Case("run: no spec file", ["run", "missing.toml", "--store", STORE])
    yield Case("run: spec is a folder", ["run", ".", "--store", STORE])
    for fmt in ["xml", ""]:
        yield Case(f"results --format {fmt!r}", ["results", "--store", STORE, "--format", fmt])
    for metric in ["accuracy", "ndcg@" + "9" * 70, "rmse", "[/]"]:
        yield Case(
            f"results --metric {metric:.20}", ["results", "--store", STORE, "--metric", metric]
        )
    for group in ["somebody", "participants", "[/]"]:
        yield Case(f"results --group {group}", ["results", "--store", STORE, "--group", group])
    for run in ["nope", "[/]", "x" * 10_000]:
        yield Case(f"results --run {run:.20}", ["results", "--store", STORE, "--run", run])
        yield Case(
            f"report --run {run:.20}", ["report", "--store", STORE, "--run", run, "-o", "r.html"]
        )
    yield Case("results --run ''", ["results", "--store", STORE, "--run", ""], expect="either")
    yield Case("results --confidence 2", ["results", "--store", STORE, "--confidence", "2"])
    yield Case("results --confidence nan", ["results", "--store", STORE, "--confidence", "nan"])
    # report outputs that must never be written
    yield Case("report -o the store", ["report", "--store", STORE, "-o", STORE])
    yield Case("report -o a folder", ["report", "--store", STORE, "-o", "."])
    yield Case(
        "report -o under a file",
        ["report", "--store", STORE, "-o", "afile/r.html"],
        {"afile": b"x"},
    )
    yield Case("report -o missing folder", ["report", "--store", STORE, "-o", "no/r.html"])
    yield Case("report -o /dev/full", ["report", "--store", STORE, "-o", "/dev/full"])
    yield Case(
        "report -o a text file",
        ["report", "--store", STORE, "-o", "notes.txt"],
        {"notes.txt": b"my notes"},
    )
    ask = ["ask", "--store", STORE]
    for args in (
        ["--delta=-2%", "--max-minutes", "-1"],
        ["--delta=-2%", "--max-minutes", "nan"],
        ["--delta=-2%", "--max-minutes", "inf"],
        ["--delta=-2%", "--folds", "1000000000"],
        ["--delta=-2%", "--folds", "0"],
        ["--delta=-2%", "--confidence", "nan"],
        ["--delta=-2%", "--confidence", "1.5"],
        ["--delta=-2%", "--seed", "-1"],
        ["--delta=-2%", "--format", "xml"],
        ["--delta=lots"],
        ["--delta=0%"],
        ["--delta=gap:-5%"],
        ["--delta=-2%", "--learner", "deep_magic"],
        ["--delta=-2%", "--learner", "item_mean", "--metric", "rmse", "--lever", "poison"],
        ["--delta=gap:50%", "--learner", "item_mean"],
        ["--delta=-2%", "--metric", "accuracy"],
        ["--delta=-2%", "--group", "non-members"],
        ["--delta=-2%", "--group", "participants", "--lever", "boycott"],
        ["--delta=-2%", "--protocol", "temporal"],
        ["--delta=-2%", "--data", "x" * 100_000],
        ["--delta=-2%", "--jobs", "0"],
        [],
    ):
        # Poison (vandalism) is a lever now: asking about it is legal, answered "No".
        expect = "either" if "poison" in args else "refused"
        yield Case(f"ask {' '.join(args):.60}", ask + args, expect=expect)
    yield Case("ask --spec without question or delta", ask + ["--spec", "spec.toml"], spec)
    for name in ["nonexistent", "x" * 10_000_000, "[/]", ""]:
        yield Case(f"data info {name:.20}", ["data", "info", name])
        yield Case(f"data fetch {name:.20}", ["data", "fetch", name])
    yield Case("data fetch --source ftp", ["data", "fetch", "movielens-100k", "--source", "ftp"])
    yield Case("data fetch --path missing", ["data", "fetch", "movielens-100k", "--path", "no.zip"])
    yield Case(
        "data fetch --path junk",
        ["data", "fetch", "movielens-100k", "--path", "j.zip"],
        {"j.zip": b"PK\x03\x04 not really a zip"},
    )
    yield Case(
        "data info --columns junk",
        ["data", "info", "r.csv", "--columns", "user"],
        {"r.csv": b"u,i,r\n1,2,3\n"},
    )
    yield Case(
        "data info --columns twice",
        ["data", "info", "r.csv", "--columns", "user=u,user=i"],
        {"r.csv": b"u,i,r\n1,2,3\n"},
    )


def _sqlite(tables: list[str]) -> bytes:
    """The bytes of a SQLite database with the given CREATE statements (another app's file)."""
    import sqlite3
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "other.db"
        conn = sqlite3.connect(path)
        for statement in tables:
            conn.execute(statement)
        conn.commit()
        conn.close()
        return path.read_bytes()


def store_cases() -> Iterator[Case]:
    """Stores that are not datalever's, damaged, or cannot hold results."""
    spec = {"spec.toml": _dump(BASE_SPEC)}
    others = {
        "another app's database": _sqlite(["CREATE TABLE notes (id INTEGER, body TEXT)"]),
        "another app's results table": _sqlite(["CREATE TABLE results (id INTEGER, score REAL)"]),
        "random bytes": bytes((i * 7919) % 256 for i in range(50_000)),
        "a text file": b"hello\n" * 100,
    }
    for name, blob in others.items():
        for command in (["run", "spec.toml"], ["results"], ["runs"], ["report", "-o", "r.html"]):
            yield Case(
                f"store is {name}: {command[0]}",
                [*command, "--store", "other.db"],
                {**spec, "other.db": blob},
            )
    for location in [":memory:", "", "   ", "sqlite://", "sqlite:///:memory:"]:
        yield Case(f"run --store {location!r}", ["run", "spec.toml", "--store", location], spec)
    for url in [
        "mysql://u@localhost/db",
        "postgresql+psycopg://u@localhost:1/db",
        "nosuchdb://x",
        "postgresql://u@127.0.0.1:1/db",
    ]:
        yield Case(f"run --store {url}", ["run", "spec.toml", "--store", url], spec)
    yield Case(
        "run --store long path", ["run", "spec.toml", "--store", "a" * 5000 + ".sqlite"], spec
    )
    yield Case(
        "run --store under a file",
        ["run", "spec.toml", "--store", "afile/s.sqlite"],
        {**spec, "afile": b"x"},
    )
    yield Case("run --store a folder", ["run", "spec.toml", "--store", "."], spec)
    yield Case("results from a missing store", ["results", "--store", "none.sqlite"])
    yield Case(
        "DATALEVER_STORE is another app's",
        ["results"],
        {"other.db": others["another app's database"]},
        env={"DATALEVER_STORE": "other.db"},
    )


def damaged_store_cases() -> Iterator[Case]:
    """The real store with bytes overwritten in its middle (the harness builds these from the
    store copy: ``{damage:OFFSET:LENGTH}`` in a case's files)."""
    damages = [(4096, 4096, "refused"), (8192, 512, "refused"), (0, 100, "refused")]
    # One byte inside a stored value may be undetectable; it must still not crash.
    damages.append((20_000, 1, "either"))
    for offset, length, expect in damages:
        for command in (["results"], ["runs"], ["run", "spec.toml"]):
            yield Case(
                f"damaged store @{offset}+{length}: {command[0]}",
                [*command, "--store", f"{{damage:{offset}:{length}}}"],
                {"spec.toml": _dump(BASE_SPEC)},
                expect,
            )


def all_cases() -> list[Case]:
    """Every case, in a fixed order (names are unique)."""
    from tests.fuzz.consent import consent_cases  # it imports this module

    cases = [
        *spec_cases(),
        *learner_cases(),
        *flag_cases(),
        *store_cases(),
        *damaged_store_cases(),
        *consent_cases(),
    ]
    seen: set[str] = set()
    for case in cases:
        while case.name in seen:
            case.name += "'"
        seen.add(case.name)
    return cases
