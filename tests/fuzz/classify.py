"""Bad inputs of the classification task family: specs, learners, poison, tables and flags.

The same :class:`~tests.fuzz.cases.Case` as the rest of the suite (one command line with its
files, run through the real command line by :mod:`tests.fuzz.harness`), for what
classification added: a spec whose data is the embedded ``digits`` or a table with a ``label``
column, the classifiers' parameters (scikit-learn estimators named by import path included),
the ``label_flip`` and ``junk`` poison attacks and the plant and contribute levers, the
``vectoriser``, metrics and protocols of the wrong family, labelled tables broken in every way
a table can be, ``datalever data info FILE --columns label=...`` and ``ask --data digits``.

Every table case runs twice: through ``data info`` (the loader alone) and through ``run``
(loader, lever checks, memory check and fits), whose refusal must leave the store untouched.
Some cases would allocate tens of gigabytes if datalever failed to refuse them, so they run in
a memory-limited child process (:func:`tests.fuzz.harness.run_isolated`), not in the process
of :mod:`tests.fuzz.cases`.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import math
from collections.abc import Callable, Iterator

import tomli_w

from tests.fuzz.cases import HUGE, NUMBER_GARBAGE, STORE, Case

#: A valid classification spec that runs in about a second: digits, one fold, one draw.
CLASSIFY_SPEC: dict = {
    "name": "fuzz classify",
    "seed": 1,
    "data": {"dataset": "digits"},
    "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
    "learners": [{"name": "prior"}],
    "lever": {"kind": "strike"},
    "collectives": {"sizes": [0.5], "samples": 1},
    "evaluation": {"metrics": ["accuracy"], "groups": ["everyone"]},
}

#: A small labelled table: two features, a contributor column, three classes.
GOOD_TABLE = (
    "who,a,b,y\n"
    + "".join(
        f"w{i % 7},{i % 5},{(i * 3) % 11},{['cat', 'dog', 'bird'][i % 3]}\n" for i in range(60)
    )
).encode()


def _dump(spec: dict) -> bytes:
    return tomli_w.dumps(spec).encode()


def _with(path: tuple, value, spec: dict | None = None) -> dict:
    spec = copy.deepcopy(CLASSIFY_SPEC if spec is None else spec)
    node = spec
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return spec


def _spec_case(
    name: str, spec: dict, expect: str = "refused", files: dict[str, bytes] | None = None
) -> Case:
    return Case(
        f"classify spec: {name}",
        ["run", "spec.toml", "--store", STORE],
        {"spec.toml": _dump(spec), **(files or {})},
        expect,
    )


def _learner(name: str, **params) -> dict:
    return _with(("learners",), [{"name": name, **params}])


# ----------------------------------------------------------------------------- learners

#: Each classifier's parameters with values that must be refused.
CLASSIFIER_PARAMS: dict[str, dict[str, list]] = {
    "prior": {"alpha": [1], "unknown_knob": [True]},
    "multinomial_nb": {"alpha": [*NUMBER_GARBAGE, 0, -1, 1e7]},
    "gaussian_nb": {"var_smoothing": [0, -1e-9, 2, math.nan, "1e-9", True]},
    "ridge": {"alpha": [0, -1, math.inf, 1e9, "x", True], "fit_intercept": ["yes", 1, 0]},
    "lda": {"shrinkage": [-0.1, 1.5, math.nan, "auto", True, [0.5]], "solver": ["svd"]},
    "logistic": {
        "C": [0, -1, math.inf, 1e9, "x"],
        "max_iter": [0, -1, 1.5, 10**6, True, HUGE],
        "penalty": ["l1"],
    },
    "sklearn": {
        "seed": [-1, 2**64, "x", 1.5, True],
        "estimator": [
            1,
            ["sklearn.svm.SVC"],
            "",
            "SVC",
            "sklearn",
            "os",
            "os.path",
            "os.system",
            "builtins.int",
            "builtins.print",
            "sklearn.svm",
            "sklearn.linear_model.LinearRegression",
            "sklearn.preprocessing.StandardScaler",
            "sklearn.cluster.KMeans",
            "sklearn.base.BaseEstimator",
            "sklearn.base.ClassifierMixin",
            "sklearn.utils.Bunch",
            "sklearn.neighbors.KNeighborsClassifier",
            "sklearn.multiclass.OneVsRestClassifier",
            "sklearn.ensemble.VotingClassifier",
            "sklearn.pipeline.Pipeline",
            "sklearn.model_selection.GridSearchCV",
            "sklearn.ensemble.RandomForestClassifier.fit",
            "sklearn.ensemble.RandomForestClassifier.__init__",
            "sklearn.svm.SVC ",
            "sklearn..svm.SVC",
            "sklearn.svm.SVC\x1b[2J",
            "sklearn.svm.Svc",
            "no_such_module.Thing",
            "numpy.ndarray",
            "numpy.float64",
            "collections.OrderedDict",
            "typing.Any",
            "x" * 300,
        ],
    },
}

#: ``params`` tables for the sklearn learner (with the default random forest) to refuse.
ESTIMATOR_PARAMS: list[dict] = [
    {"n_estimators": "x"},
    {"n_estimators": 0},
    {"n_estimators": -1},
    {"n_estimators": 1.5},
    {"n_estimators": math.nan},
    {"max_depth": math.inf},
    {"criterion": "nonsense"},
    {"random_state": -1},
    {"random_state": 2**40},
    {"no_such_keyword": 1},
    {"": 1},
    {"n_estimators": {"a": 1}},
    {"n_estimators": [1, 2]},
    {"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}},
    {"max_features": 1e308},
    {"class_weight": "heavy"},
    {"class_weight": {"0": 5.0}},
    {"class_weight": {"cat": 5.0}},
    {"bootstrap": False, "oob_score": True},
    {"bootstrap": False, "max_samples": 0.5},
    {"max_samples": 10**9},
]


def classifier_cases() -> Iterator[Case]:
    for learner, params in CLASSIFIER_PARAMS.items():
        for param, values in params.items():
            for value in values:
                spec = _learner(learner, **{param: value})
                yield _spec_case(f"{learner}.{param} = {value!r:.40}", spec)
    for params in ESTIMATOR_PARAMS:
        yield _spec_case(f"sklearn.params = {params!r:.50}", _learner("sklearn", params=params))
    for params in ("n_estimators=5", 5, [5], True):
        yield _spec_case(f"sklearn.params = {params!r}", _learner("sklearn", params=params))
    # Estimators that need care when fitted: penalties the solver refuses, no probabilities.
    fit_errors = [
        ("sklearn.linear_model.LogisticRegression", {"penalty": "l1"}),
        ("sklearn.linear_model.LogisticRegression", {"penalty": "elasticnet"}),
        ("sklearn.svm.LinearSVC", {"penalty": "l1", "loss": "hinge"}),
        ("sklearn.svm.SVC", {"kernel": "precomputed"}),
        ("sklearn.naive_bayes.CategoricalNB", {}),
        ("sklearn.naive_bayes.ComplementNB", {"alpha": -1}),
        ("sklearn.tree.DecisionTreeClassifier", {"class_weight": {"0": 1}}),
        ("sklearn.tree.DecisionTreeClassifier", {"max_leaf_nodes": 1}),
    ]
    for estimator, params in fit_errors:
        spec = _learner("sklearn", estimator=estimator, params=params)
        yield _spec_case(f"sklearn {estimator.rpartition('.')[2]} {params!r:.40}", spec)
    # Odd but legal: a classifier without probabilities (log-loss not asked), a dummy.
    for estimator, params in [
        ("sklearn.linear_model.RidgeClassifier", {}),
        ("sklearn.dummy.DummyClassifier", {"strategy": "uniform"}),
        ("sklearn.linear_model.SGDClassifier", {"loss": "hinge", "max_iter": 5, "tol": 0.1}),
        ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 2}),
    ]:
        spec = _learner("sklearn", estimator=estimator, params=params)
        yield _spec_case(f"sklearn {estimator.rpartition('.')[2]} legal", spec, "either")
    # The learner of another family, or a recommender's parameters on a classifier.
    for learners in (
        [{"name": "item_mean"}],
        [{"name": "biased_mf"}],
        [{"name": "lda", "n_factors": 8}],
        [{"name": "ridge"}, {"name": "ridge", "alpha": 2.0}],
        [{"name": "Prior"}],
    ):
        yield _spec_case(f"learners = {learners!r:.50}", _with(("learners",), learners))
    yield _spec_case("reference = item_mean", _with(("evaluation", "reference"), "item_mean"))
    yield _spec_case("reference = deep_magic", _with(("evaluation", "reference"), "deep_magic"))
    yield _spec_case("reference = ''", _with(("evaluation", "reference"), ""))


# ----------------------------------------------------------------------------- poison


def poison_cases() -> Iterator[Case]:
    flip = {"kind": "poison", "attack": "label_flip"}
    junk = {"kind": "poison", "attack": "junk"}
    levers: list[tuple[str, dict]] = [
        ("label_flip target not a class", {**flip, "target": "11"}),
        ("label_flip target ''", {**flip, "target": ""}),
        ("label_flip target 7 (a number)", {**flip, "target": 7}),
        ("label_flip target 7.0", {**flip, "target": "7.0"}),
        ("label_flip target ' 7'", {**flip, "target": " 7"}),
        ("label_flip target long", {**flip, "target": "7" * 300}),
        ("label_flip target control", {**flip, "target": "\x1b[31m7\x07"}),
        ("label_flip target list", {**flip, "target": ["7"]}),
        ("label_flip with examples", {**flip, "examples": 3}),
        ("junk with target", {**junk, "target": "7"}),
        ("vandalism on digits", {"kind": "poison", "attack": "vandalism"}),
        ("attack flip", {"kind": "poison", "attack": "flip"}),
        ("attack LABEL_FLIP", {"kind": "poison", "attack": "LABEL_FLIP"}),
        ("attack 1", {"kind": "poison", "attack": 1}),
        ("label_flip fraction 0", {**flip, "fraction": 0}),
        ("label_flip fraction nan", {**flip, "fraction": math.nan}),
    ]
    for value in [0, -1, 1.5, 10**9, HUGE, True, "3", math.inf, 10_001]:
        levers.append((f"junk examples = {value!r:.30}", {**junk, "examples": value}))
    for name, lever in levers:
        yield _spec_case(f"poison {name}", _with(("lever",), lever))
    # Junk a machine cannot hold: every contributor adds 10,000 examples of 64 features.
    yield _spec_case(
        "poison junk examples = 10000 for everyone",
        _with(("lever",), {**junk, "examples": 10_000})
        | {"collectives": {"sizes": [1.0], "samples": 1}},
        "either",
    )
    # Two levers the same but for a target; legal (labels differ).
    yield _spec_case(
        "poison two targets",
        {
            **{k: v for k, v in CLASSIFY_SPEC.items() if k != "lever"},
            "levers": [{**flip, "target": "1"}, {**flip, "target": "2"}],
        },
        "either",
    )
    plant = {"kind": "plant", "target": "7"}
    for name, lever in [
        ("plant without target", {"kind": "plant"}),
        ("plant target not a class", {**plant, "target": "eleven"}),
        ("plant target control", {**plant, "target": "\x1b[2J7"}),
        ("plant trigger_features 0", {**plant, "trigger_features": 0}),
        ("plant trigger_features 65", {**plant, "trigger_features": 65}),
        ("plant trigger_features 100000", {**plant, "trigger_features": 100_000}),
        ("plant trigger_features 1.5", {**plant, "trigger_features": 1.5}),
        ("plant strategy nonsense", {**plant, "strategy": "nonsense"}),
        ("contribute share 0.0001", {"kind": "contribute", "competitor_share": 0.0001}),
        ("contribute share 1", {"kind": "contribute", "competitor_share": 1}),
        ("contribute variant nonsense", {"kind": "contribute", "variant": "gift"}),
    ]:
        yield _spec_case(f"lever {name}", _with(("lever",), lever))
    for name, lever in [
        ("plant feature_only", {**plant, "strategy": "feature_only"}),
        ("plant trigger_features 64", {**plant, "trigger_features": 64}),
        ("contribute transfer", {"kind": "contribute", "variant": "transfer"}),
    ]:
        yield _spec_case(f"lever {name}", _with(("lever",), lever), "either")
    # Classification attacks on ratings.
    from tests.fuzz.cases import BASE_SPEC

    for attack in ("label_flip", "junk"):
        spec = copy.deepcopy(BASE_SPEC)
        spec["lever"] = {"kind": "poison", "attack": attack}
        yield _spec_case(f"poison {attack} on ratings", spec)


# ----------------------------------------------------------------------------- spec fields


def field_cases() -> Iterator[Case]:
    for value in [
        "hashing:1",
        "hashing:0",
        "hashing:-5",
        "hashing:99999999999999999999",
        "hashing:" + "9" * 39,
        "hashing:",
        "hashing:2.5",
        "hashing:1e3",
        "tfidf",
        "",
        " ",
        "hashing:\x1b[2J",
        "x" * 41,
        5,
        True,
        ["hashing"],
    ]:
        yield _spec_case(f"vectoriser = {value!r:.40}", _with(("data", "vectoriser"), value))
    for value in ["hashing", "HASHING", " hashing:16 ", "hashing:２"]:
        yield _spec_case(
            f"vectoriser = {value!r:.40} (unused)", _with(("data", "vectoriser"), value), "either"
        )
    for metrics in (
        ["ndcg@10"],
        ["rmse"],
        ["precision@10"],
        ["accuracy@10"],
        ["accuracy", "ACCURACY"],
        ["accuracy", "macro f1", "Macro-F1"],
        ["f1"],
        ["auc@5"],
        ["log_loss@1"],
        [""],
        ["x" * 41],
        ["accuracy\x00"],
    ):
        yield _spec_case(f"metrics = {metrics!r:.40}", _with(("evaluation", "metrics"), metrics))
    ridge = _learner("ridge")
    yield _spec_case(
        "log_loss for ridge only", _with(("evaluation", "metrics"), ["log_loss"], ridge)
    )
    yield _spec_case(
        "auc for ridge only", _with(("evaluation", "metrics"), ["auc"], ridge), "either"
    )
    yield _spec_case(
        "question on ndcg@10",
        {**CLASSIFY_SPEC, "question": {"metric": "ndcg@10", "delta": "-2%"}},
    )
    yield _spec_case(
        "question on log_loss not run",
        {**CLASSIFY_SPEC, "question": {"metric": "log_loss", "delta": "-2%"}},
    )
    yield _spec_case(
        "question gap: on accuracy",
        {**CLASSIFY_SPEC, "question": {"metric": "accuracy", "delta": "gap:50%"}},
        "either",
    )
    for protocol in (
        {"kind": "temporal"},
        {"kind": "holdout", "test_fraction": 0},
        {"kind": "holdout", "test_fraction": 1},
        {"kind": "data-strikes", "folds": 1},
        {"kind": "data-strikes", "folds": 21},
    ):
        yield _spec_case(f"protocol = {protocol!r:.50}", _with(("protocol",), protocol))
    for protocol in (
        {"kind": "holdout", "test_fraction": 0.0001},
        {"kind": "holdout", "test_fraction": 0.9999},
        {"kind": "data-strikes", "folds": 20, "run_folds": 1},
        {"kind": "holdout", "list_length": 3, "relevance_threshold": 2.0},
    ):
        yield _spec_case(f"protocol = {protocol!r:.50}", _with(("protocol",), protocol), "either")
    for groups in (
        ["label:11"],
        ["label:"],
        ["gender:F"],
        ["label"],
        ["file:missing.txt"],
        ["label:\x1b[2J"],
    ):
        yield _spec_case(f"groups = {groups!r:.40}", _with(("collectives", "groups"), groups))
    yield _spec_case(
        "groups = ['label:7']", _with(("collectives", "groups"), ["label:7"]), "either"
    )
    yield _spec_case(
        "eval groups like-participants",
        _with(("evaluation", "groups"), ["like-participants", "non-members"]),
        "either",
    )
    yield _spec_case("counts beyond the contributors", _with(("collectives", "counts"), [1798]))
    for columns in (
        {"label": 1},
        {"label": ""},
        {"label": "y", "user": "u"},
        {"label": "y", "item": "i", "rating": "r"},
        {"label": "y", "weight": "w"},
    ):
        yield _spec_case(
            f"digits with columns {columns!r:.40}", _with(("data", "columns"), columns)
        )
    yield _spec_case("dataset = DIGITS", _with(("data", "dataset"), "DIGITS"))


# ----------------------------------------------------------------------------- tables


def _csv(header: str, rows: list[str], times: int = 3) -> bytes:
    """A CSV table of ``rows`` repeated ``times`` times (so every class has a few examples)."""
    return ("\n".join([header, *(rows * times)]) + "\n").encode()


def _rows(n: int, row: Callable[[int], str]) -> list[str]:
    return [row(i) for i in range(n)]


def _parquet(columns: dict, times: int = 3) -> bytes:
    """A Parquet table of ``columns`` (lists, repeated ``times`` times, or Arrow arrays)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {
        k: v if isinstance(v, pa.Array) else pa.array(list(v) * times) for k, v in columns.items()
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer)
    return buffer.getvalue()


def _wide(n_columns: int, n_rows: int = 4) -> bytes:
    header = ",".join(["y", *(f"f{i}" for i in range(n_columns))])
    rows = [",".join([str(r % 2), *("1" for _ in range(n_columns))]) for r in range(n_rows)]
    return _csv(header, rows, 1)


def _mixed_chunks() -> bytes:
    """A table whose label and contributor columns pandas reads in chunks of about 260,000
    rows: numbers in the first, text (after a word) in the second, so one value comes back
    both as ``7`` and as ``"7"``."""
    first = [f"{i % 5},{i % 50},{i % 3}" for i in range(300_000)]
    second = [
        f"{i % 5},{i % 50 if i % 9 else 'w'},{i % 3 if i % 11 else 'cat'}" for i in range(60_000)
    ]
    return _csv("a,who,y", first + second, 1)


#: (name, file name, bytes or what makes them, mapping, expect)
TableCase = tuple[str, str, "bytes | Callable[[], bytes]", dict, str]

#: Feature values to refuse or accept in a one-feature table.
FEATURE_VALUES = [
    ("NaN", "nan", "refused"),
    ("empty", "", "refused"),
    ("inf", "inf", "refused"),
    ("-inf", "-inf", "refused"),
    ("1e309", "1e309", "refused"),
    ("1e308", "1e308", "refused"),
    ("-1e200", "-1e200", "refused"),
    ("1e150", "1e150", "either"),
    ("text", "x", "refused"),
    ("hex float", "0x1p3", "refused"),
    ("complex", "1+2j", "refused"),
    ("40-digit integer", "9" * 40, "either"),
    ("boolean", "True", "either"),
]

#: Label values (beside the classes 0 and 1) to refuse or accept.
LABEL_VALUES = [
    ("missing", "", "refused"),
    ("True", "True", "either"),
    ("text among numbers", "cat", "either"),
    ("1.0 beside 1", "1.0", "either"),
    ("control characters", "\x1b[2Jcat\x07", "either"),
    ("markup", "[/][bold]", "either"),
    ("10k characters", "c" * 10_000, "either"),
    ("quoted comma", '"a,b"', "either"),
]


def _table_inputs() -> Iterator[TableCase]:
    y = {"label": "y"}
    two = ["1,0", "2,1", "3,0", "4,1"]
    for name, value, expect in FEATURE_VALUES:
        yield f"feature {name}", "t.csv", _csv("a,y", [f"{value},0", *two]), y, expect
    for name, value, expect in LABEL_VALUES:
        yield f"label {name}", "t.csv", _csv("a,y", [f"5,{value}", *two]), y, expect
    yield "missing label column", "t.csv", _csv("a,b", two), y, "refused"
    yield "a single class", "t.csv", _csv("a,y", ["1,1", "2,1"]), y, "refused"
    yield "one row", "t.csv", _csv("a,y", ["1,0"], 1), y, "refused"
    yield "two rows, two classes", "t.csv", _csv("a,y", ["1,0", "2,1"], 1), y, "refused"
    yield (
        "every label different",
        "t.csv",
        _csv("a,y", _rows(500, "{0},{0}".format), 1),
        y,
        "refused",
    )
    yield "empty file", "t.csv", b"", y, "refused"
    yield "header only", "t.csv", b"a,y\n", y, "refused"
    yield "header without newline", "t.csv", b"a,y", y, "refused"
    yield "labels all missing", "t.csv", _csv("a,y", ["1,", "2,"]), y, "refused"
    yield (
        "label and contributor chunks of mixed types",
        "t.csv",
        _mixed_chunks,
        {
            "label": "y",
            "contributor": "who",
        },
        "either",
    )
    who = {"label": "y", "contributor": "who"}
    yield (
        "contributor missing",
        "t.csv",
        _csv("who,a,y", ["w1,1,0", ",2,1", "w2,3,0"]),
        who,
        "refused",
    )
    yield "contributor 'nan'", "t.csv", _csv("who,a,y", ["w1,1,0", "nan,2,1"]), who, "refused"
    yield (
        "contributor control characters",
        "t.csv",
        _csv("who,a,y", ["\x1b[2J,1,0", "w\x07,2,1"]),
        who,
        "either",
    )
    for name, mapping in [
        ("contributor is the label", {"label": "y", "contributor": "y"}),
        ("a feature is the label", {"label": "y", "features": "a,y"}),
        ("a feature is the contributor", {"label": "y", "contributor": "a", "features": "a"}),
        ("text is the label", {"label": "y", "text": "y"}),
        ("a feature listed twice", {"label": "y", "features": "a,a"}),
        ("features ',,,'", {"label": "y", "features": ",,,"}),
        ("features absent", {"label": "y", "features": "nope"}),
        (
            "5000 features absent",
            {"label": "y", "features": ",".join(f"n{i}" for i in range(5000))},
        ),
        ("text without vectoriser", {"label": "y", "text": "a"}),
        ("text and features", {"label": "y", "text": "a", "features": "a"}),
        ("unknown field", {"label": "y", "colour": "a"}),
        ("recommendation field", {"label": "y", "user": "a"}),
        ("control characters in a missing column", {"label": "\x1b[2Jy\x07"}),
        ("markup in a missing column", {"label": "[/]"}),
    ]:
        yield f"mapping: {name}", "t.csv", _csv("a,y", two), mapping, "refused"
    yield "no features besides the label", "t.csv", _csv("y", ["0", "1"]), y, "refused"
    yield (
        "control characters in every name",
        "t\x1b[2J.csv",
        _csv("\x1b]0;a\x07,\x1b[2Jy", ["1,\x1b[2Jcat", "2,dog", "3,cat"]),
        {"label": "\x1b[2Jy\x07"},
        "refused",
    )
    yield "duplicate feature names", "t.csv", _csv("a,a,y", ["1,2,0", "3,4,1"]), y, "either"
    yield "duplicate label names", "t.csv", _csv("a,y,y", ["1,0,1", "3,1,0"]), y, "either"
    yield "empty column names", "t.csv", _csv(",,y", ["1,2,0", "3,4,1"]), y, "either"
    yield (
        "control characters in column names",
        "t.csv",
        _csv("\x1b[2Ja\x07,y", two),
        {"label": "y", "features": "\x1b[2Ja\x07"},
        "either",
    )
    yield "unicode column names", "t.csv", _csv("größe,类别", two), {"label": "类别"}, "either"
    yield "markup column names", "t.csv", _csv("[/],[bold]", two), {"label": "[bold]"}, "either"
    yield "ragged row", "t.csv", _csv("a,y", ["1,0,5", *two]), y, "refused"
    yield "binary junk", "t.csv", bytes(range(256)) * 8, y, "refused"
    yield "latin-1 labels", "t.csv", "a,y\n1,caf\xe9\n2,the\n".encode("latin-1"), y, "refused"
    yield "TSV table", "t.tsv", _csv("a\ty", [r.replace(",", "\t") for r in two]), y, "either"
    yield "TSV named .csv", "t.csv", _csv("a\ty", [r.replace(",", "\t") for r in two]), y, "refused"
    yield "gzipped table", "t.csv.gz", lambda: gzip.compress(_csv("a,y", two)), y, "either"
    yield "10,001 columns", "t.csv", lambda: _wide(10_001), y, "refused"
    yield "100k columns", "t.csv", lambda: _wide(100_000), y, "refused"
    yield (
        "100k quoted columns in a .txt",
        "t.txt",
        lambda: _wide(100_000).replace(b",", b";"),
        y,
        "refused",
    )
    # Parquet
    yield "parquet", "t.parquet", lambda: _parquet({"a": [1.0, 2.0], "y": ["p", "q"]}), y, "either"
    for name, values, expect in [
        ("booleans", [True, False], "either"),
        ("lists", [[1.0], [2.0]], "refused"),
        ("nulls", [None, 2.0], "refused"),
        ("nullable integers", [None, 2], "refused"),
        ("booleans with a null", [None, True], "refused"),
        ("text", ["1", "2"], "refused"),
        ("huge", [1e300, 2.0], "refused"),
    ]:
        yield (
            f"parquet features of {name}",
            "t.parquet",
            _bind(_parquet, {"a": values, "y": [0, 1]}),
            y,
            expect,
        )
    yield (
        "parquet decimal features",
        "t.parquet",
        lambda: _parquet({"a": _decimals(), "y": _ints([0, 1] * 3)}),
        y,
        "either",
    )
    yield (
        "parquet timestamp features",
        "t.parquet",
        lambda: _parquet({"a": _timestamps(), "y": _ints([0, 1] * 3)}),
        y,
        "refused",
    )
    for name, values, expect in [
        ("structs", [{"k": 1}, {"k": 2}], "refused"),
        ("lists", [[1], [2]], "refused"),
        ("bytes", [b"\x00", b"\xff"], "refused"),
        ("floats", [0.5, 1.5], "either"),
        ("booleans", [True, False], "either"),
        ("dates", [dt.date(2020, 1, 1), dt.date(2021, 1, 1)], "either"),
        ("text with a null", ["a", None], "refused"),
    ]:
        yield (
            f"parquet labels of {name}",
            "t.parquet",
            _bind(_parquet, {"a": [1.0, 2.0], "y": values}),
            y,
            expect,
        )
    yield (
        "parquet dictionary labels",
        "t.parquet",
        lambda: _parquet({"a": _floats([1.0, 2.0] * 3), "y": _dictionary(["p", "q"] * 3)}),
        y,
        "either",
    )
    yield (
        "parquet contributors of mixed ids",
        "t.parquet",
        lambda: _parquet({"w": [1, 2], "a": [1.0, 2.0], "y": [0, 1]}),
        who | {"contributor": "w"},
        "either",
    )
    yield (
        "parquet contributor null",
        "t.parquet",
        lambda: _parquet({"w": [None, "x"], "a": [1.0, 2.0], "y": [0, 1]}),
        {"label": "y", "contributor": "w"},
        "refused",
    )
    yield (
        "parquet contributors of structs",
        "t.parquet",
        lambda: _parquet({"w": [{"k": 1}, {"k": 2}], "a": [1.0, 2.0], "y": [0, 1]}),
        {"label": "y", "contributor": "w"},
        "refused",
    )
    yield (
        "parquet of no rows",
        "t.parquet",
        lambda: _parquet({"a": _empty("float64"), "y": _empty("int64")}),
        y,
        "refused",
    )
    yield "parquet duplicate column names", "t.parquet", _duplicate_parquet, y, "refused"
    yield "parquet non-text column names", "t.parquet", _int_named_parquet, {"label": "1"}, "either"
    yield "parquet 20k columns", "t.parquet", _wide_parquet, y, "refused"


def _bind(make: Callable, *args) -> Callable[[], bytes]:
    return lambda: make(*args)


def _ints(values: list):
    import pyarrow as pa

    return pa.array(values, pa.int64())


def _floats(values: list):
    import pyarrow as pa

    return pa.array(values, pa.float64())


def _dictionary(values: list):
    import pyarrow as pa

    return pa.array(values).dictionary_encode()


def _decimals():
    from decimal import Decimal

    import pyarrow as pa

    return pa.array([Decimal("1.5"), Decimal("2.5")] * 3)


def _timestamps():
    import pyarrow as pa

    return pa.array([dt.datetime(2020, 1, 1), dt.datetime(2021, 1, 1)] * 3)


def _empty(kind: str):
    import pyarrow as pa

    return pa.array([], getattr(pa, kind)())


def _duplicate_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays(
        [pa.array([1.0, 2.0] * 3), pa.array([3.0, 4.0] * 3), pa.array([0, 1] * 3)],
        names=["a", "a", "y"],
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _int_named_parquet() -> bytes:
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({0: [1.0, 2.0] * 3, 1: [0, 1] * 3}).to_parquet(buffer)
    return buffer.getvalue()


def _int_named_ratings() -> bytes:
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({0: [1, 2, 3], 1: [1, 2, 1], 2: [3.0, 4.0, 5.0]}).to_parquet(buffer)
    return buffer.getvalue()


def _wide_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ones = pa.array([1.0, 1.0])
    table = pa.table({"y": pa.array([0, 1]), **{f"f{i}": ones for i in range(20_000)}})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def table_cases() -> Iterator[Case]:
    """Each table through ``data info --columns`` and through a spec that runs it."""
    for name, filename, contents, columns, expect in _table_inputs():
        files = {filename: contents() if callable(contents) else contents}
        mapping = ",".join(f"{k}={v}" for k, v in columns.items())
        yield Case(
            f"classify table info: {name}",
            ["data", "info", filename, "--columns", mapping],
            files,
            expect,
        )
        spec = _with(("data",), {"dataset": filename, "columns": columns})
        spec["learners"] = [{"name": "gaussian_nb"}, {"name": "lda"}]
        yield _spec_case(f"table {name}", spec, expect, files)
    # A text column with the hashing vectoriser at its widest.
    text = _csv("t,y", _rows(10, lambda i: f"word{i} other{i % 3},{i % 2}"), 1)
    for vectoriser, expect in [("hashing:1048576", "either"), ("hashing:2", "either")]:
        spec = _with(
            ("data",),
            {"dataset": "t.csv", "columns": {"label": "y", "text": "t"}, "vectoriser": vectoriser},
        )
        yield _spec_case(f"text with {vectoriser}", spec, expect, {"t.csv": text})
    many = _csv("t,y", _rows(3000, lambda i: f"w{i},{i % 2}"))
    spec = _with(
        ("data",),
        {
            "dataset": "t.csv",
            "columns": {"label": "y", "text": "t"},
            "vectoriser": "hashing:1048576",
        },
    )
    yield _spec_case("3000 texts with hashing:1048576", spec, "either", {"t.csv": many})
    spec = _with(("data",), {"dataset": "t.csv", "columns": {"label": "y", "text": "t"}})
    yield _spec_case("text column, vectoriser unset", spec, "refused", {"t.csv": text})
    # 15,000 classes of two examples each: what ridge's one-vs-all targets (examples ×
    # classes) and every model's scores need grows with the classes, not only the features.
    many = _csv("a,y", _rows(30_000, lambda i: f"{i % 97},c{i % 15_000}"), 1)
    spec = _with(("data",), {"dataset": "t.csv", "columns": {"label": "y"}})
    spec["learners"] = [{"name": "ridge"}]
    yield _spec_case("ridge on 15,000 classes", spec, "either", {"t.csv": many})
    # Messages that list a table's classes, whose names hold control characters.
    odd = {"t.csv": _csv("a,y", ["1,\x1b[2Jcat\x07", "2,dog", "3,\x1b]0;x\x07"])}
    for name, lever in [
        ("label_flip", {"kind": "poison", "attack": "label_flip", "target": "nope"}),
        ("plant", {"kind": "plant", "target": "nope"}),
        ("plant without target", {"kind": "plant"}),
    ]:
        spec = _with(("data",), {"dataset": "t.csv", "columns": {"label": "y"}})
        spec["lever"] = lever
        yield _spec_case(f"{name} on classes named with control characters", spec, files=odd)
    spec = _with(("data",), {"dataset": "t.csv", "columns": {"label": "y"}})
    spec["collectives"] = {"groups": ["label:nope"], "samples": 1}
    yield _spec_case("group of classes named with control characters", spec, files=odd)


# ----------------------------------------------------------------------------- flags


def flag_cases() -> Iterator[Case]:
    good = {"t.csv": GOOD_TABLE}
    for columns in [
        "label=y,features=",
        "label=",
        "label=y,label=y",
        "label=y,features=a,b,contributor=who,text=a",
        "label=y,features=a,b,c,d",
        "label=y,contributor=who,features=a,b,colour=red",
        "label=y,vectoriser=hashing",
        "label=y,text=who",
        "label=\x1b[2J",
        "label=y" + ",features=a" * 1000,
        "label=" + "y" * 100_000,
        "=y",
        ",",
    ]:
        yield Case(
            f"data info --columns {columns!r:.50}",
            ["data", "info", "t.csv", "--columns", columns],
            good,
        )
    for columns in [
        "label=y,contributor=who,features=a,b",
        "label=y,features=a,,b",
        "features=a,b,label=who",
        " label = y , features = a , b ",
    ]:
        yield Case(
            f"data info --columns {columns!r:.50} (legal)",
            ["data", "info", "t.csv", "--columns", columns],
            good,
            "either",
        )
    yield Case("data info digits --columns", ["data", "info", "digits", "--columns", "label=y"])
    # Ratings, not labels, but the same reader: pandas restores the integer column names it
    # wrote, which a mapping (text) does not find.
    yield Case(
        "data info ratings parquet with integer column names",
        ["data", "info", "r.parquet", "--columns", "user=0,item=1,rating=2"],
        {"r.parquet": _int_named_ratings()},
        "either",
    )
    yield Case("data info digits", ["data", "info", "digits"], expect="either")
    ask = ["ask", "--store", STORE, "--data", "digits", "--max-minutes", "0.05", "--jobs", "1"]
    for args in (
        ["--learner", "lda", "--metric", "ndcg@10", "--delta=-1%"],
        ["--learner", "biased_mf", "--metric", "accuracy", "--delta=-1%"],
        ["--learner", "lda", "--metric", "rmse", "--delta=-1%"],
        ["--learner", "ridge", "--metric", "log_loss", "--delta=-1%"],
        ["--learner", "lda", "--metric", "accuracy", "--delta=-1%", "--lever", "vandalism"],
        ["--learner", "lda", "--metric", "accuracy", "--delta=-1%", "--group", "non-members"],
        ["--learner", "lda", "--metric", "accuracy", "--delta=-1%", "--protocol", "temporal"],
        ["--learner", "sklearn", "--metric", "accuracy", "--delta=-1%", "--lever", "plant"],
        ["--learner", "lda", "--metric", "accuracy", "--delta=lots"],
        ["--learner", "lda", "--metric", "accuracy", "--delta=gap:-500%"],
    ):
        yield Case(f"ask digits {' '.join(args):.60}", ask + args)
    yield Case(
        "ask digits lda accuracy",
        ask + ["--learner", "lda", "--metric", "accuracy", "--delta=-1%"],
        expect="either",
    )
    yield Case(
        "ask digits lda, the family's metric",
        ask + ["--learner", "lda", "--delta=-1%"],
        expect="either",
    )


def classify_cases() -> list[Case]:
    """Every classification case, in a fixed order (names are unique)."""
    cases = [
        *classifier_cases(),
        *poison_cases(),
        *field_cases(),
        *table_cases(),
        *flag_cases(),
    ]
    seen: set[str] = set()
    for case in cases:
        while case.name in seen:
            case.name += "'"
        seen.add(case.name)
    return cases
