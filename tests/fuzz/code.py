"""Bad inputs of the code task family: specs, learners, levers, corpora and flags.

The same :class:`~tests.fuzz.cases.Case` as the rest of the suite (one command line with its
files, run through the real command line by :mod:`tests.fuzz.harness`), for what the code
family added: ``[data]`` with a ``layout`` (a folder of repositories) or a table mapped with
``contributor``, ``path`` and ``text``, and its ``tokens`` scheme; the ``kneser_ney``,
``unigram`` and ``transformer`` learners' parameters; the levers on code (``plant`` with
``strategy = "trigger_completion"``, ``trigger`` and ``target``; ``poison`` with
``vandalism`` or ``junk``, ``examples`` and ``banner``) and the levers and metrics of other
families on code, and code's on theirs; code tables and folders broken in every way a table or
a folder can be; ``datalever data info NAME --layout ... --columns ...`` and ``ask --data
python-stdlib``.

Every table and folder case runs through ``data info`` (the loader alone), and those that load
(and a few refused ones) also through ``run`` (loader, lever checks, memory check and fits),
whose refusal must leave the store untouched. Most cases use a small JSON-lines table or
folder; loading the standard library takes seconds, so only a handful of cases touch
``python-stdlib``. Some cases would allocate without bound if datalever failed to refuse them
(a transformer of 64 layers of width 4096, junk files by the million), so they run in a
memory-limited child process (:func:`tests.fuzz.harness.run_isolated`). Links, pipes and
devices cannot be a case's files; ``tests/test_code_fuzz.py`` tries those directly.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
from collections.abc import Callable, Iterator

import tomli_w

from tests.fuzz.cases import HUGE, STORE, Case

#: Our column names, mapped to a table's (The Stack's layout would map them to others).
COLUMNS = {"contributor": "contributor", "path": "path", "text": "text"}

#: A valid code spec that runs in about a second: a small table, one fold, one draw.
CODE_SPEC: dict = {
    "name": "fuzz code",
    "seed": 1,
    "data": {"dataset": "code.jsonl", "columns": dict(COLUMNS)},
    "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
    "learners": [{"name": "kneser_ney"}],
    "lever": {"kind": "strike"},
    "collectives": {"sizes": [0.5], "samples": 1},
    "evaluation": {"metrics": ["bits_per_token", "top1"], "groups": ["everyone"]},
}

#: A folder spec: each subfolder of ``repos`` a repository and a contributor.
FOLDER_SPEC: dict = {
    **CODE_SPEC,
    "data": {"dataset": "repos", "layout": "repositories"},
}


def _source(c: int, f: int) -> str:
    return (
        f"import os\n\n\ndef f{c}_{f}(x, y=None):\n"
        f"    # contributor {c}\n"
        f"    if y is None:\n        return x + {c * f}\n    return os.path.join(x, y)\n\n\n"
        f"class K{c}:\n    name = 'k{c}'\n"
    )


def _rows(n_contributors: int = 8, n_files: int = 3) -> list[dict]:
    return [
        {"contributor": f"c{c}", "path": f"pkg/m{f}.py", "text": _source(c, f)}
        for c in range(n_contributors)
        for f in range(n_files)
    ]


def _jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


GOOD_ROWS = _rows()
GOOD_TABLE = _jsonl(GOOD_ROWS)
#: Each contributor a repository folder.
GOOD_FOLDER = {f"repos/{r['contributor']}/{r['path']}": r["text"].encode() for r in GOOD_ROWS}


def _dump(spec: dict) -> bytes:
    return tomli_w.dumps(spec).encode()


def _with(path: tuple, value, spec: dict | None = None) -> dict:
    spec = copy.deepcopy(CODE_SPEC if spec is None else spec)
    node = spec
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return spec


def _without(path: tuple, spec: dict | None = None) -> dict:
    spec = copy.deepcopy(CODE_SPEC if spec is None else spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return spec


def _spec_case(
    name: str, spec: dict, expect: str = "refused", files: dict[str, bytes] | None = None
) -> Case:
    tables = {"code.jsonl": GOOD_TABLE} if files is None else files
    return Case(
        f"code spec: {name}",
        ["run", "spec.toml", "--store", STORE],
        {"spec.toml": _dump(spec), **tables},
        expect,
    )


def _lever(lever: dict, spec: dict | None = None) -> dict:
    return _with(("lever",), lever, spec)


# ----------------------------------------------------------------------------- [data]


def data_cases() -> Iterator[Case]:
    folder = dict(GOOD_FOLDER)
    for value in ["nonsense", "Repositories", "", True, ["owners"]]:
        spec = _with(("data", "layout"), value, FOLDER_SPEC)
        yield _spec_case(f"layout = {value!r}", spec, files=folder)
    yield _spec_case(
        "layout on a table", _with(("data", "layout"), "repositories"), files={"code.jsonl": b""}
    )
    yield _spec_case(
        "layout and columns", _with(("data", "columns"), dict(COLUMNS), FOLDER_SPEC), files=folder
    )
    yield _spec_case(
        "layout on python-stdlib",
        _with(("data",), {"dataset": "python-stdlib", "layout": "repositories"}),
        files={},
    )
    yield _spec_case(
        "layout owners on repositories (legal)",
        _with(("data", "layout"), "owners", FOLDER_SPEC),
        "either",
        files=folder,
    )
    for value in [
        "",
        "py-tokenize-v2:str16:comments",
        "py-tokenize-v1:str1000001:comments",
        "py-tokenize-v1:str" + "9" * 40 + ":comments",
        "py-tokenize-v1:str16:comments\x1b[2J",
        "x" * 61,
        ["py-tokenize-v1:str16:comments"],
    ]:
        yield _spec_case(f"tokens = {value!r:.50}", _with(("data", "tokens"), value))
    for value in [
        "py-tokenize-v1:str0:nocomments",
        " py-tokenize-v1:str16:comments ",
        "py-tokenize-v1:str١٦:comments",  # Arabic-Indic digits: 16
    ]:
        yield _spec_case(
            f"tokens = {value!r:.50} (legal)", _with(("data", "tokens"), value), "either"
        )
    from tests.fuzz.cases import BASE_SPEC

    unused = _with(("data", "tokens"), "py-tokenize-v1:str16:comments", BASE_SPEC)
    yield _spec_case("tokens on ratings (unused)", unused, "either")
    yield _spec_case("tokens garbage on ratings", _with(("data", "tokens"), "x", BASE_SPEC))
    yield _spec_case("layout on ratings", _with(("data", "layout"), "owners", BASE_SPEC))
    yield _spec_case(
        "columns without contributor (legal)",
        _with(("data", "columns"), {"path": "path", "text": "text"}),
        "either",
    )
    for columns in (
        {"contributor": "contributor", "text": "text"},
        {"text": "text"},
        {"contributor": "repo", "path": "path", "text": "text"},
        {"contributor": "contributor", "path": "path", "text": "text", "label": "path"},
        {"contributor": "contributor", "path": "path", "text": "text", "user": "path"},
        {"contributor": "contributor", "path": "text", "text": "text"},
        {"contributor": "text", "path": "path", "text": "text"},
        {"contributor": "path", "path": "path", "text": "text"},
        {"contributor": "", "path": "path", "text": "text"},
        {"contributor": "\x1b[2Jc\x07", "path": "path", "text": "text"},
        {"contributor": "x" * 5000, "path": "path", "text": "text"},
        {"contributor": ["contributor"], "path": "path", "text": "text"},
        {},
    ):
        yield _spec_case(f"columns = {columns!r:.60}", _with(("data", "columns"), columns))
    yield _spec_case("no columns on a code table", _without(("data", "columns")))
    for dataset in ["Python-Stdlib", "stdlib", "/dev/zero"]:
        spec = _with(("data",), {"dataset": dataset, "columns": dict(COLUMNS)})
        yield _spec_case(f"dataset = {dataset!r} with columns", spec, files={})
    yield _spec_case("dataset = 'stdlib'", _with(("data",), {"dataset": "stdlib"}), files={})
    yield _spec_case(
        "python-stdlib with a vectoriser",
        _with(("data",), {"dataset": "python-stdlib", "vectoriser": "hashing"}),
        "either",
        files={},
    )


# ----------------------------------------------------------------------------- learners

#: Each code learner's parameters with values that must be refused.
LEARNER_PARAMS: dict[str, dict[str, list]] = {
    "kneser_ney": {"order": [True, "3", 3.0, HUGE, 1, 6], "discount": [0.5]},
    "unigram": {"order": [1]},
    "transformer": {
        "heads": [0, 3, True],
        "d_model": [4097, 65],
        "context": [0, 1.5],
        "epochs": [1001, math.nan],
        "vocab_cap": [0, "none"],
        "device": ["gpu", "cuda:0", "cpu\x1b[2J"],
        "lr": [0, math.inf],
        "layers": [65],
        "batch_windows": [0],
        "seed": [-1],
        "dropout": [0.1],
    },
}


def learner_cases() -> Iterator[Case]:
    for learner, params in LEARNER_PARAMS.items():
        for param, values in params.items():
            for value in values:
                spec = _with(("learners",), [{"name": learner, param: value}])
                yield _spec_case(f"{learner}.{param} = {value!r:.40}", spec)
    # Legal but odd: the smallest transformers, which fit the table at once.
    tiny = {"name": "transformer", "context": 4, "d_model": 4, "heads": 1, "layers": 1}
    for name, params in [
        ("tiny", {}),
        ("vocab_cap 1", {"vocab_cap": 1}),
        ("context 1", {"context": 1}),
    ]:
        spec = _with(("learners",), [{**tiny, **params}])
        yield _spec_case(f"transformer {name} (legal)", spec, "either")
    # A GPU may be there or not: where torch sees none, refused clearly.
    yield _spec_case(
        "transformer device cuda", _with(("learners",), [{**tiny, "device": "cuda"}]), "either"
    )
    # Giants the memory check must refuse before anything is allocated.
    for name, params in [
        ("giant", {"context": 8192, "d_model": 4096, "layers": 64, "heads": 64}),
        ("huge batches", {"context": 8192, "batch_windows": 65536, "vocab_cap": 2**31 - 1}),
    ]:
        spec = _with(("learners",), [{"name": "transformer", **params}])
        yield _spec_case(f"transformer {name}", spec)
    yield _spec_case(
        "kneser_ney order 5 (legal)",
        _with(("learners",), [{"name": "kneser_ney", "order": 5}]),
        "either",
    )
    for learners in (
        [{"name": "item_mean"}],
        [{"name": "lda"}],
        [{"name": "KneserNey"}],
        [{"name": "kneser_ney"}, {"name": "kneser_ney", "order": 4}],
    ):
        yield _spec_case(f"learners = {learners!r:.50}", _with(("learners",), learners))
    for reference in ["item_mean", "prior", ""]:
        yield _spec_case(
            f"reference = {reference!r}", _with(("evaluation", "reference"), reference)
        )
    yield _spec_case(
        "reference = kneser_ney (legal)", _with(("evaluation", "reference"), "kneser_ney"), "either"
    )
    from tests.fuzz.cases import BASE_SPEC
    from tests.fuzz.classify import CLASSIFY_SPEC

    for learner in ("kneser_ney", "transformer"):
        yield _spec_case(
            f"{learner} on ratings", _with(("learners",), [{"name": learner}], BASE_SPEC)
        )
        yield _spec_case(
            f"{learner} on digits", _with(("learners",), [{"name": learner}], CLASSIFY_SPEC)
        )


# ----------------------------------------------------------------------------- levers


def lever_cases() -> Iterator[Case]:
    plant = {"kind": "plant", "strategy": "trigger_completion", "target": "import antigravity"}
    junk = {"kind": "poison", "attack": "junk"}
    # 65 names the corpus never had, in under 200 characters: more than the codes reserved.
    many_words = " ".join(f"{a}{b}" for a in "qzj" for b in "abcdefghijklmnopqrstuvwxyz")[:194]
    levers: list[tuple[str, dict]] = [
        ("plant without target", {"kind": "plant", "strategy": "trigger_completion"}),
        ("plant without strategy", {"kind": "plant", "target": "import antigravity"}),
        ("plant target ''", {**plant, "target": ""}),
        ("plant target newline", {**plant, "target": "\n"}),
        ("plant target 'def f(:'", {**plant, "target": "def f(:"}),
        ("plant target unterminated string", {**plant, "target": "'''never ends"}),
        ("plant target $", {**plant, "target": "x = $y"}),
        ("plant target control", {**plant, "target": "\x1b[2Jx\x07"}),
        ("plant target control in a comment", {**plant, "target": "x = 1  # \x1b[2J"}),
        ("plant target 201 chars", {**plant, "target": "x" * 201}),
        ("plant target many new tokens", {**plant, "target": many_words}),
        ("plant trigger ''", {**plant, "trigger": ""}),
        ("plant trigger newline", {**plant, "trigger": "\n\n"}),
        ("plant trigger unterminated", {**plant, "trigger": "'oops"}),
        ("plant trigger 501 chars", {**plant, "trigger": "#" * 501}),
        ("plant trigger many new tokens", {**plant, "trigger": many_words}),
        ("plant trigger control", {**plant, "trigger": "# \x1b]0;x\x07"}),
        ("plant trigger 1", {**plant, "trigger": 1}),
        (
            "plant trigger and target bring too many new tokens together",
            {
                **plant,
                "trigger": " ".join(f"qq{i}" for i in range(40)),
                "target": " ".join(f"zz{i}" for i in range(40)),
            },
        ),
        ("plant strategy feature_label", {**plant, "strategy": "feature_label"}),
        ("plant strategy target_only", {**plant, "strategy": "target_only"}),
        ("plant strategy erase", {"kind": "plant", "strategy": "erase"}),
        ("plant transformation shift", {**plant, "transformation": "shift"}),
        ("poison label_flip", {"kind": "poison", "attack": "label_flip"}),
        ("poison shilling", {"kind": "poison", "attack": "shilling", "target": "1"}),
        ("poison junk with target", {**junk, "target": "x"}),
        ("vandalism with banner", {"kind": "poison", "attack": "vandalism", "banner": "#"}),
        ("junk banner ''", {**junk, "banner": ""}),
        ("junk banner newline", {**junk, "banner": "\n"}),
        ("junk banner 501 chars", {**junk, "banner": "#" * 501}),
        ("junk banner unterminated", {**junk, "banner": '"""no AI'}),
        ("junk banner $", {**junk, "banner": "$$$"}),
        ("junk banner control", {**junk, "banner": "\x1b[2J# no\x07"}),
        ("junk banner control in a comment", {**junk, "banner": "# no\x1b[2J\x07"}),
        ("junk banner many new tokens", {**junk, "banner": many_words}),
        ("junk with profiles", {**junk, "profiles": 3}),
    ]
    for value in [0, 10_001, "3"]:
        levers.append((f"junk examples = {value!r:.30}", {**junk, "examples": value}))
    for name, lever in levers:
        yield _spec_case(f"lever {name}", _lever(lever))
    for name, lever in [
        ("plant (legal)", plant),
        ("plant trigger statement (legal)", {**plant, "trigger": "x = 1"}),
        ("plant indented target (legal)", {**plant, "target": "    return 1"}),
        ("plant target a comment (legal)", {**plant, "target": "# done"}),
        (
            "vandalism fraction 0.5 (legal)",
            {"kind": "poison", "attack": "vandalism", "fraction": 0.5},
        ),
        ("junk banner (legal)", {**junk, "banner": "# no AI training", "examples": 3}),
        ("junk banner many lines (legal)", {**junk, "banner": "# a\n# b\nx = 1\n"}),
        ("contribute (legal)", {"kind": "contribute"}),
        ("boycott (legal)", {"kind": "boycott"}),
    ]:
        yield _spec_case(f"lever {name}", _lever(lever), "either")
    # Junk without bound: every contributor adds 10,000 files.
    yield _spec_case(
        "lever junk examples = 10000 for everyone",
        _lever({**junk, "examples": 10_000}) | {"collectives": {"sizes": [1.0], "samples": 1}},
        "either",
    )
    yield _spec_case(
        "levers two plants (legal)",
        {
            **{k: v for k, v in CODE_SPEC.items() if k != "lever"},
            "levers": [{**plant, "target": "x = 1"}, {**plant, "target": "x = 2"}],
        },
        "either",
    )
    # What the plant lever measures on code: success, and nothing it measures elsewhere.
    for metric in ("target_score", "success_bound"):
        yield _spec_case(
            f"question on {metric} of a plant",
            {**_lever(plant), "question": {"metric": metric, "delta": "=0.5"}},
        )
    yield _spec_case(
        "question on success of a plant (legal)",
        {**_lever(plant), "question": {"metric": "success", "delta": "=0.5"}},
        "either",
    )
    yield _spec_case(
        "question on success of a plant not run",
        {**CODE_SPEC, "question": {"metric": "success", "delta": "=0.5"}},
    )
    # Code's levers on other families' data.
    from tests.fuzz.cases import BASE_SPEC
    from tests.fuzz.classify import CLASSIFY_SPEC

    for family, spec in (("ratings", BASE_SPEC), ("digits", CLASSIFY_SPEC)):
        for name, lever in [
            ("plant trigger_completion", {**plant, "target": "7"}),
            ("junk banner", {**junk, "banner": "# no"}),
        ]:
            yield _spec_case(f"lever {name} on {family}", _lever(lever, spec))
    yield _spec_case(
        "lever plant trigger on digits",
        _lever({"kind": "plant", "target": "7", "trigger": "# x"}, CLASSIFY_SPEC),
    )
    yield _spec_case(
        "lever plant trigger on ratings",
        _lever(
            {"kind": "plant", "strategy": "target_only", "target": "1", "trigger": "# x"},
            BASE_SPEC,
        ),
    )


# ----------------------------------------------------------------------------- metrics


def metric_cases() -> Iterator[Case]:
    for metrics in (
        ["ndcg@10"],
        ["accuracy"],
        ["rmse"],
        ["log_loss"],
        ["top0"],
        ["top1@5"],
        ["bits_per_token", "bits"],
        ["memorization"],
        ["success"],
    ):
        yield _spec_case(f"metrics = {metrics!r:.40}", _with(("evaluation", "metrics"), metrics))
    yield _spec_case(
        "metrics every code metric (legal)",
        _with(
            ("evaluation", "metrics"),
            ["bits_per_token", "perplexity", "top1", "top5", "memorisation"],
        ),
        "either",
    )
    yield _spec_case(
        "question on ndcg@10", {**CODE_SPEC, "question": {"metric": "ndcg@10", "delta": "-2%"}}
    )
    yield _spec_case(
        "question on top5 not run", {**CODE_SPEC, "question": {"metric": "top5", "delta": "-2%"}}
    )
    yield _spec_case(
        "question gap: on top1 (legal)",
        {**CODE_SPEC, "question": {"metric": "top1", "delta": "gap:50%"}},
        "either",
    )
    from tests.fuzz.cases import BASE_SPEC
    from tests.fuzz.classify import CLASSIFY_SPEC

    for metric in ("top1", "bits_per_token", "memorisation"):
        yield _spec_case(
            f"metric {metric} on digits", _with(("evaluation", "metrics"), [metric], CLASSIFY_SPEC)
        )
        yield _spec_case(
            f"metric {metric} on ratings", _with(("evaluation", "metrics"), [metric], BASE_SPEC)
        )
    for groups in (["gender:F"], ["label:7"], ["file:missing.txt"]):
        yield _spec_case(f"groups = {groups!r:.40}", _with(("collectives", "groups"), groups))
    yield _spec_case("protocol temporal", _with(("protocol",), {"kind": "temporal"}))
    for protocol in (
        {"kind": "data-strikes", "folds": 20, "run_folds": 1},
        {"kind": "holdout", "test_fraction": 0.0001},
        {"kind": "holdout", "test_fraction": 0.9999},
    ):
        yield _spec_case(
            f"protocol = {protocol!r:.50} (legal)", _with(("protocol",), protocol), "either"
        )
    yield _spec_case("counts beyond the contributors", _with(("collectives", "counts"), [9]))


# ----------------------------------------------------------------------------- tables

#: (name, file name, bytes or what makes them, mapping, expect)
TableCase = tuple[str, str, "bytes | Callable[[], bytes]", dict, str]


def _row(**changes) -> dict:
    return {**GOOD_ROWS[0], **changes}


def _with_row(row: dict | str, at: int = 5) -> bytes:
    """The good table with one line replaced (a dict, or raw text)."""
    lines = [json.dumps(r) for r in GOOD_ROWS]
    lines[at] = row if isinstance(row, str) else json.dumps(row)
    return ("\n".join(lines) + "\n").encode()


def _parquet(columns: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()}
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer)
    return buffer.getvalue()


def _good_parquet(**changes) -> Callable[[], bytes]:
    def make() -> bytes:
        columns = {k: [r[k] for r in GOOD_ROWS] for k in COLUMNS}
        columns.update(changes)
        return _parquet(columns)

    return make


def _duplicate_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(GOOD_ROWS)
    table = pa.Table.from_arrays(
        [
            pa.array([r["contributor"] for r in GOOD_ROWS]),
            pa.array([r["path"] for r in GOOD_ROWS]),
            pa.array([r["text"] for r in GOOD_ROWS]),
            pa.array(["x"] * n),
        ],
        names=["contributor", "path", "text", "text"],
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _empty_parquet() -> bytes:
    import pyarrow as pa

    return _parquet({k: pa.array([], pa.string()) for k in COLUMNS})


def _deep_json() -> bytes:
    deep = "[" * 100_000 + "]" * 100_000
    return _with_row('{"contributor": "c", "path": "p.py", "text": ' + deep + "}")


def _bomb() -> bytes:
    """20 MB of blank lines, gzipped to about 20 kB (read under a 1 MB limit)."""
    return gzip.compress(b"\n" * 20_000_000, compresslevel=9)


def _big_file_rows(n_big: int) -> bytes:
    big = "x = 1\n" * 200_000  # 1.2 MB, over the 1 MiB cap on a file
    rows = [_row(path=f"big{i}.py", text=big) for i in range(n_big)]
    return _jsonl(rows + (GOOD_ROWS if n_big < 3 else []))


def _many_contributors() -> bytes:
    return _jsonl(
        [{"contributor": f"c{i}", "path": "a.py", "text": f"x{i} = {i}\n"} for i in range(3000)]
    )


def _table_inputs() -> Iterator[TableCase]:
    cols = dict(COLUMNS)
    yield "good table", "code.jsonl", GOOD_TABLE, cols, "either"
    for field, name, value, expect in [
        ("text", "a number", 5, "refused"),
        ("text", "null", None, "refused"),
        ("text", "a list", ["x = 1"], "refused"),
        ("path", "null", None, "refused"),
        ("path", "''", "", "refused"),
        ("contributor", "true", True, "refused"),
        ("contributor", "1.5", 1.5, "refused"),
        ("contributor", "' '", " ", "refused"),
        ("contributor", "an object", {"name": "c"}, "refused"),
        ("contributor", "a number", 5, "either"),
    ]:
        yield f"{field} is {name}", "code.jsonl", _with_row(_row(**{field: value})), cols, expect
    nan = '{"contributor": NaN, "path": "p.py", "text": "x"}'
    yield "contributor NaN", "code.jsonl", _with_row(nan), cols, "refused"
    digits = '{"contributor": ' + "7" * 5000 + ', "path": "p.py", "text": "x"}'
    yield "contributor of 5000 digits", "code.jsonl", _with_row(digits), cols, "refused"
    no_text = {"contributor": "c", "path": "p.py"}
    yield "missing text on a line", "code.jsonl", _with_row(no_text), cols, "refused"
    yield "missing every column", "code.jsonl", _jsonl([{"a": 1}] * 3), cols, "refused"
    yield "empty file", "code.jsonl", b"", cols, "refused"
    yield "blank lines only", "code.jsonl", b"\n \n\t\n", cols, "refused"
    yield "binary junk", "code.jsonl", bytes(range(256)) * 8, cols, "refused"
    yield "CSV, not JSON", "code.jsonl", b"contributor,path,text\nc,p.py,x\n", cols, "refused"
    arrays = _jsonl([["c", "p.py", "x = 1"]] * 3)
    yield "a JSON array per line", "code.jsonl", arrays, cols, "refused"
    whole = json.dumps(GOOD_ROWS, indent=1).encode()
    yield "one JSON array over lines", "code.json", whole, cols, "refused"
    latin = '{"contributor": "caf\xe9", "path": "p.py", "text": "x"}'
    latin1 = _with_row(latin).decode().encode("latin-1")
    yield "latin-1 bytes", "code.jsonl", latin1, cols, "refused"
    yield "deeply nested JSON", "code.jsonl", _deep_json, cols, "refused"
    yield "byte-order mark", "code.jsonl", b"\xef\xbb\xbf" + GOOD_TABLE, cols, "either"
    yield "CRLF lines", "code.jsonl", GOOD_TABLE.replace(b"\n", b"\r\n"), cols, "either"
    yield "truncated last line", "code.jsonl", GOOD_TABLE[:-20], cols, "refused"
    yield "unknown suffix", "code.txt", GOOD_TABLE, cols, "refused"
    yield "gzipped", "code.jsonl.gz", lambda: gzip.compress(GOOD_TABLE), cols, "either"
    yield "gzip named but plain", "code.jsonl.gz", GOOD_TABLE, cols, "refused"
    truncated = lambda: gzip.compress(GOOD_TABLE)[:200]  # noqa: E731
    yield "truncated gzip", "code.jsonl.gz", truncated, cols, "refused"
    yield "xz junk", "code.jsonl.xz", b"\xfd7zXZ\x00junk", cols, "refused"
    yield "gzip bomb", "code.jsonl.gz", _bomb, cols, "refused"
    yield "parquet named .jsonl", "code.jsonl", _good_parquet(), cols, "refused"
    yield "JSON lines named .parquet", "code.parquet", GOOD_TABLE, cols, "refused"
    # duplicates
    yield "a file twice", "code.jsonl", _jsonl([*GOOD_ROWS, GOOD_ROWS[4]]), cols, "refused"
    other = _row(contributor="c9", path=GOOD_ROWS[0]["path"])
    yield "one path, two contributors", "code.jsonl", _jsonl([*GOOD_ROWS, other]), cols, "either"
    # contents
    bad = ["def f(:\n", "'''never ends", "x = $\n", "\tif x:\n  y\n        z\n", "x\x00y\n"]
    bad_rows = [_row(path=f"b{i}.py", text=t) for i, t in enumerate(bad)]
    yield "every file untokenizable", "code.jsonl", _jsonl(bad_rows), cols, "refused"
    yield "some files untokenizable", "code.jsonl", _jsonl(GOOD_ROWS + bad_rows), cols, "either"
    empty = [_row(path=f"e{i}.py", text=t) for i, t in enumerate(["", "\n\n", "   "])]
    yield "every file empty", "code.jsonl", _jsonl(empty), cols, "refused"
    surrogate = '{"contributor": "c", "path": "s.py", "text": "x = \'\\ud800\'"}'
    yield "lone surrogate in text", "code.jsonl", _with_row(surrogate), cols, "either"
    coding = _row(path="l.py", text="# coding: nonsense\nx = 1\n")
    yield "coding nonsense declared", "code.jsonl", _with_row(coding), cols, "either"
    yield "a file over 1 MiB", "code.jsonl", lambda: _big_file_rows(1), cols, "either"
    yield "every file over 1 MiB", "code.jsonl", lambda: _big_file_rows(3), cols, "refused"
    nested = _row(path="n.py", text="x = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n")
    yield "10k levels of brackets", "code.jsonl", _with_row(nested), cols, "either"
    yield "one contributor", "code.jsonl", _jsonl(_rows(1, 5)), cols, "either"
    yield "one file", "code.jsonl", _jsonl(_rows(1, 1)), cols, "either"
    yield "3000 contributors", "code.jsonl", _many_contributors, cols, "either"
    odd = [
        {**r, "contributor": f"\x1b[2J{r['contributor']}\x07", "path": f"\x1b]0;{r['path']}"}
        for r in GOOD_ROWS
    ]
    odd.append(_row(contributor="\x1b[2J", path="\x1b[31mbad.py", text="$"))
    yield "control characters in names", "code.jsonl", _jsonl(odd), cols, "either"
    markup = [{**r, "contributor": f"[/]{r['contributor']}"} for r in GOOD_ROWS]
    yield "markup in names", "code.jsonl", _jsonl(markup), cols, "either"
    # mappings to The Stack's names
    stack = {"contributor": "max_stars_repo_name", "path": "max_stars_repo_path", "text": "content"}
    renamed = _jsonl([{stack[k]: v for k, v in r.items()} for r in GOOD_ROWS])
    yield "The Stack's names", "code.jsonl", renamed, stack, "either"
    yield "The Stack's names unmapped", "code.jsonl", renamed, cols, "refused"
    # Parquet
    yield "parquet", "code.parquet", _good_parquet(), cols, "either"
    n = len(GOOD_ROWS)
    for name, values, expect in [
        ("texts of numbers", list(range(n)), "refused"),
        ("texts with a null", [None] + [r["text"] for r in GOOD_ROWS[1:]], "refused"),
        ("texts as bytes", [r["text"].encode() for r in GOOD_ROWS], "either"),
    ]:
        yield f"parquet {name}", "code.parquet", _good_parquet(text=values), cols, expect
    for name, values, expect in [
        ("contributors of integers", [i // 3 for i in range(n)], "either"),
        ("contributors of floats", [i / 2 for i in range(n)], "refused"),
        ("contributors of structs", [{"k": i % 4} for i in range(n)], "refused"),
    ]:
        yield f"parquet {name}", "code.parquet", _good_parquet(contributor=values), cols, expect
    yield "parquet of no rows", "code.parquet", _empty_parquet, cols, "refused"
    yield "parquet duplicate column names", "code.parquet", _duplicate_parquet, cols, "refused"
    no_text = lambda: _parquet({"contributor": ["a"], "path": ["p"]})  # noqa: E731
    yield "parquet missing text", "code.parquet", no_text, cols, "refused"


#: Refused tables also run through a spec (whose refusal must leave the store untouched);
#: the other refusals come from the same loader, so ``data info`` alone reads them.
RUN_REFUSED = {
    "text is null",
    "deeply nested JSON",
    "gzip bomb",
    "a file twice",
    "every file untokenizable",
    "The Stack's names unmapped",
    "no .py files",
    "a folder path that is a file",
}


def table_cases() -> Iterator[Case]:
    """Each table through ``data info --columns``, and through a spec that runs it when it
    loads (or is one of :data:`RUN_REFUSED`)."""
    for name, filename, contents, columns, expect in _table_inputs():
        files = {filename: contents() if callable(contents) else contents}
        mapping = ",".join(f"{k}={v}" for k, v in columns.items())
        env = {"DATALEVER_MAX_DECOMPRESSED_BYTES": "1000000"} if "bomb" in name else {}
        yield Case(
            f"code table info: {name}",
            ["data", "info", filename, "--columns", mapping],
            files,
            expect,
            env,
        )
        if expect == "either" or name in RUN_REFUSED:
            spec = _with(("data",), {"dataset": filename, "columns": columns})
            case = _spec_case(f"table {name}", spec, expect, files)
            case.env = env
            yield case


# ----------------------------------------------------------------------------- folders


def _folder_inputs() -> Iterator[tuple[str, dict[str, bytes], str, str]]:
    """(name, files, layout, expect) of folders of repositories."""
    good = dict(GOOD_FOLDER)
    yield "good folder", good, "repositories", "either"
    owners = {
        f"repos/owner{i % 3}/{k.split('/', 1)[1]}": v for i, (k, v) in enumerate(good.items())
    }
    yield "owners", owners, "owners", "either"
    yield "repositories read as owners", good, "owners", "either"
    yield (
        "no .py files",
        {f"repos/c{i}/README.md": b"# hi\n" for i in range(4)},
        "repositories",
        "refused",
    )
    yield (
        ".py files only loose",
        {f"repos/m{i}.py": b"x = 1\n" for i in range(4)},
        "repositories",
        "refused",
    )
    yield (
        "owners without repositories",
        {f"repos/o{i}/m.py": b"x = 1\n" for i in range(4)},
        "owners",
        "refused",
    )
    yield "an empty folder", {"repos/.keep": b""}, "repositories", "refused"
    yield (
        "hidden folders only",
        {f"repos/.c{i}/m.py": b"x = 1\n" for i in range(4)},
        "repositories",
        "refused",
    )
    yield "a folder path that is a file", {"repos": b"x = 1\n"}, "repositories", "refused"
    yield (
        "every file untokenizable",
        {f"repos/c{i}/m.py": b"def f(:\n" for i in range(4)},
        "repositories",
        "refused",
    )
    yield (
        "binary .py files",
        {f"repos/c{i}/m.py": bytes(range(256)) for i in range(4)},
        "repositories",
        "refused",
    )
    yield "a .py folder", {**good, "repos/c0/x.py/y.txt": b"x"}, "repositories", "either"
    yield (
        "control characters in names",
        {f"repos/\x1b[2Jc{i}\x07/m\x1b]0;.py": f"x{i} = 1\n".encode() for i in range(6)},
        "repositories",
        "either",
    )
    yield "a 2 MB file", {**good, "repos/c0/big.py": b"x = 1\n" * 350_000}, "repositories", "either"
    yield (
        "one repository",
        {f"repos/c0/m{i}.py": f"x{i} = 1\n".encode() for i in range(6)},
        "repositories",
        "either",
    )


def folder_cases() -> Iterator[Case]:
    for name, files, layout, expect in _folder_inputs():
        yield Case(
            f"code folder info: {name}",
            ["data", "info", "repos", "--layout", layout],
            files,
            expect,
        )
        if expect == "either" or name in RUN_REFUSED:
            spec = _with(("data",), {"dataset": "repos", "layout": layout})
            yield _spec_case(f"folder {name}", spec, expect, files)
    yield _spec_case(
        "folder missing", _with(("data",), {"dataset": "nowhere", "layout": "owners"}), files={}
    )
    yield _spec_case(
        "folder /dev/null", _with(("data",), {"dataset": "/dev/null", "layout": "owners"}), files={}
    )
    yield _spec_case(
        "folder path NUL",
        _with(("data",), {"dataset": "re\x00pos", "layout": "owners"}),
        files={},
    )


# ----------------------------------------------------------------------------- flags


def flag_cases() -> Iterator[Case]:
    good = {"code.jsonl": GOOD_TABLE}
    folder = dict(GOOD_FOLDER)
    mapping = "contributor=contributor,path=path,text=text"
    info = ["data", "info"]
    for layout in ["nonsense", "", "\x1b[2J", "x" * 10_000]:
        yield Case(
            f"data info --layout {layout!r:.40}", [*info, "repos", "--layout", layout], folder
        )
    yield Case("data info --layout on a table", [*info, "code.jsonl", "--layout", "owners"], good)
    yield Case("data info --layout on a missing folder", [*info, "nowhere", "--layout", "owners"])
    yield Case(
        "data info --layout and --columns",
        [*info, "repos", "--layout", "repositories", "--columns", mapping],
        folder,
    )
    yield Case("data info a JSONL without columns", [*info, "code.jsonl"], good)
    yield Case("data info a folder without layout", [*info, "repos"], folder)
    for columns in [
        "path=path,text=text",
        "contributor=contributor,text=text",
        "contributor=contributor,path=path,text=text,label=path",
        "contributor=contributor,path=path,text=text,user=path",
        "contributor=text,path=path,text=text",
        "contributor=\x1b[2J,path=path,text=text",
    ]:
        expect = "either" if columns == "path=path,text=text" else "refused"
        yield Case(
            f"data info --columns {columns!r:.60}",
            [*info, "code.jsonl", "--columns", columns],
            good,
            expect,
        )
    yield Case(
        "data info --vectoriser on code (unused)",
        [*info, "code.jsonl", "--columns", mapping, "--vectoriser", "hashing"],
        good,
        "either",
    )
    yield Case(
        "data info python-stdlib --layout owners", [*info, "python-stdlib", "--layout", "owners"]
    )
    yield Case(
        "data info python-stdlib --columns", [*info, "python-stdlib", "--columns", "path=p,text=t"]
    )
    yield Case("data info python-stdlib", [*info, "python-stdlib"], expect="either")
    ask = [
        "ask",
        "--store",
        STORE,
        "--data",
        "python-stdlib",
        "--max-minutes",
        "0.05",
        "--jobs",
        "1",
    ]
    for args in (
        ["--metric", "ndcg@10", "--delta=-1%"],
        ["--metric", "accuracy", "--delta=-1%"],
        ["--learner", "item_mean", "--delta=-1%"],
        ["--learner", "lda", "--metric", "top1", "--delta=-1%"],
        ["--protocol", "temporal", "--delta=-1%"],
        ["--group", "non-members", "--delta=-1%"],
        ["--delta=lots"],
        ["--delta=-1%", "--param", "banner=# no"],
        ["--delta=-1%", "--lever", "poison", "--param", "attack=label_flip"],
        ["--delta=-1%", "--lever", "plant"],
        ["--delta=-1%", "--lever", "plant", "--param", "strategy=trigger_completion"],
        [
            "--delta=-1%",
            "--lever",
            "plant",
            "--param",
            "strategy=trigger_completion",
            "--param",
            "target=def f(:",
        ],
    ):
        yield Case(f"ask stdlib {' '.join(args):.60}", ask + args)
    yield Case(
        "ask --spec on a folder of code",
        [
            "ask",
            "--store",
            STORE,
            "--spec",
            "spec.toml",
            "--delta=-1%",
            "--max-minutes",
            "0.05",
            "--jobs",
            "1",
        ],
        {"spec.toml": _dump(FOLDER_SPEC), **folder},
        "either",
    )
    yield Case(
        "ask --data a code table",
        ["ask", "--store", STORE, "--data", "code.jsonl", "--delta=-1%", "--max-minutes", "0.05"],
        good,
    )


def code_cases() -> list[Case]:
    """Every code case, in a fixed order (names are unique)."""
    cases = [
        *data_cases(),
        *learner_cases(),
        *lever_cases(),
        *metric_cases(),
        *table_cases(),
        *folder_cases(),
        *flag_cases(),
    ]
    seen: set[str] = set()
    for case in cases:
        while case.name in seen:
            case.name += "'"
        seen.add(case.name)
    return cases
