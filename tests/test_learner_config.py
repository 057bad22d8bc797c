"""Learner parameters are checked by each learner's typed config before anything runs: wrong
types and values out of range are refused with one paragraph naming the learner, the
parameter, the value and what it accepts; accepted values are taken exactly as given."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.errors import DataleverError
from datalever.learners import (
    EASE,
    LEARNERS,
    BiasedMF,
    CenteredItemKNN,
    ItemKNN,
    UserKNN,
    check_learner,
    make_learner,
)
from datalever.spec import parse_spec
from tests.conftest import SMALL_SPEC

NAN, INF = math.nan, math.inf

#: Each learner's parameters by kind; every learner of the catalogue is listed.
COUNTS = {
    "biased_mf": ["n_factors", "n_epochs", "seed"],
    "user_knn": ["k", "min_k"],
    "item_knn": ["k", "min_k"],
    "item_knn_centered": ["k", "min_k"],
}
REALS = {
    "biased_mf": ["lr", "reg", "init_std"],
    "item_knn_centered": ["min_sim"],
    "ease": ["regularization"],
}
CHOICES = {"biased_mf": ["backend"], "user_knn": ["similarity"], "item_knn": ["similarity"]}
NO_PARAMETERS = ["global_mean", "item_mean", "popularity"]


def cases(table: dict[str, list[str]], values: list) -> list:
    return [
        pytest.param(learner, name, value, id=f"{learner}.{name}={value!r}")
        for learner, names in table.items()
        for name in names
        for value in values
    ]


def refusal(learner: str, params: dict) -> str:
    with pytest.raises(DataleverError) as info:
        make_learner(learner, params)
    message = str(info.value)
    assert "\n" not in message  # one paragraph
    assert f"'{learner}'" in message
    return message


def test_the_tables_cover_every_learner_and_parameter():
    """Every parameter of every learner is exercised below, by its kind."""
    for learner, cls in LEARNERS.items():
        listed = COUNTS.get(learner, []) + REALS.get(learner, []) + CHOICES.get(learner, [])
        listed += ["device"] if learner == "biased_mf" else []
        assert sorted(listed) == sorted(cls.Config.model_fields), learner
    assert sorted(NO_PARAMETERS) == sorted(
        n for n, c in LEARNERS.items() if not c.Config.model_fields
    )


# ------------------------------------------------------------------------------ refusals


# Not whole numbers, not numbers at all, or far outside any sane range: the fuzzed inputs
# (n_factors = -1, "x", 1.5, 1e9; n_epochs = 0, -5, 10000000; booleans) among them.
BAD_COUNTS = [-1, -5, "x", "40", 1.5, 40.0, 1e9, 2**64, 10**30, True, False, NAN, None, [1]]
TOO_MANY = [p for p in cases(COUNTS, [10_000_000]) if p.values[1] != "seed"]  # any seed is fine


@pytest.mark.parametrize(("learner", "name", "value"), cases(COUNTS, BAD_COUNTS) + TOO_MANY)
def test_counts_take_only_whole_numbers_in_range(learner, name, value):
    message = refusal(learner, {name: value})
    assert f"{name} = " in message and f"{name} must be an integer from " in message


@pytest.mark.parametrize(
    ("learner", "name", "value", "shown"),
    [
        ("biased_mf", "n_factors", -1, "n_factors = -1"),
        ("biased_mf", "n_factors", "x", 'n_factors = "x"'),
        ("biased_mf", "n_factors", 1.5, "n_factors = 1.5"),
        ("biased_mf", "n_factors", 1e9, "n_factors = 1e9"),
        ("biased_mf", "n_factors", 1025, "n_factors = 1025"),
        ("biased_mf", "n_epochs", 0, "n_epochs = 0"),
        ("biased_mf", "n_epochs", -5, "n_epochs = -5"),
        ("biased_mf", "n_epochs", 10_000_000, "n_epochs = 10000000"),
        ("biased_mf", "seed", -1, "seed = -1"),
        ("biased_mf", "seed", True, "seed = true"),
        ("biased_mf", "lr", NAN, "lr = nan"),
        ("biased_mf", "reg", -INF, "reg = -inf"),
        ("biased_mf", "init_std", -0.1, "init_std = -0.1"),
        ("ease", "regularization", INF, "regularization = inf"),
        ("ease", "regularization", 1e308, "regularization = 1e308"),
        ("item_knn", "k", 0, "k = 0"),
        ("user_knn", "similarity", "pearson", 'similarity = "pearson"'),
    ],
)
def test_the_message_names_learner_parameter_value_and_range(learner, name, value, shown):
    message = refusal(learner, {name: value})
    field = LEARNERS[learner].Config.model_fields[name]
    assert f"cannot take {shown}:" in message
    assert f"{name} must be {LEARNERS[learner].Config.accepts(name)}" in message
    assert f"(defaults: {name} = " in message and field.default is not None


def test_the_ranges_read_as_words():
    mf, ease = BiasedMF.Config, EASE.Config
    assert mf.accepts("n_factors") == "an integer from 1 to 1024"
    assert mf.accepts("lr") == "a finite number above 0 and at most 1"
    assert mf.accepts("reg") == "a finite number from 0 to 100"
    assert mf.accepts("backend") == 'one of "auto", "numba", "torch"'
    assert ease.accepts("regularization") == "a finite number above 0 and at most 1e6"


# NaN, infinite, negative, booleans and numbers written as text; 1e308 is past every range.
BAD_REALS = [NAN, INF, -INF, -0.1, -1, True, False, "0.1", "nan", None, [0.1], {"v": 1}, 1e308]


@pytest.mark.parametrize(("learner", "name", "value"), cases(REALS, BAD_REALS))
def test_reals_take_only_finite_numbers_in_range(learner, name, value):
    message = refusal(learner, {name: value})
    assert f"{name} must be a finite number " in message


@pytest.mark.parametrize(
    ("learner", "name"),
    [
        ("biased_mf", "lr"),
        ("biased_mf", "init_std"),
        ("item_knn_centered", "min_sim"),
        ("ease", "regularization"),
    ],
)
def test_zero_is_refused_where_it_means_nothing_is_learned_or_no_neighbour_counts(learner, name):
    assert "above 0" in refusal(learner, {name: 0.0})


@pytest.mark.parametrize(
    ("learner", "name", "value"),
    cases(CHOICES, ["gpu", "pearson", "", " msd", "MSD", "Numba", 1, True, None, ["msd"]]),
)
def test_choices_are_taken_verbatim(learner, name, value):
    """No case folding or trimming: a different-looking value is a different value."""
    assert f"{name} must be one of " in refusal(learner, {name: value})


@pytest.mark.parametrize("device", ["", "CUDA", "cuda 0", "cuda:-1", "gpu!", 0, True, "x" * 200])
def test_device_names_are_checked(device):
    message = refusal("biased_mf", {"backend": "torch", "device": device})
    assert 'device must be a torch device name such as "cuda"' in message
    assert len(message) < 400  # a long value is shortened, not repeated in full


def test_a_device_needs_the_torch_backend():
    message = refusal("biased_mf", {"device": "cuda"})
    assert 'a device is chosen only with backend = "torch"' in message


@pytest.mark.parametrize("learner", NO_PARAMETERS)
def test_learners_without_parameters_refuse_any(learner):
    assert "has no parameter(s) k" in refusal(learner, {"k": 5})


def test_unknown_parameters_and_learners_are_named():
    assert "has no parameter(s) factors" in refusal("biased_mf", {"factors": 3, "lr": NAN})
    with pytest.raises(DataleverError, match="Unknown learner 'deep_magic'"):
        check_learner("deep_magic", {})


def test_every_bad_parameter_is_named_at_once():
    message = refusal("biased_mf", {"n_factors": -1, "lr": NAN, "n_epochs": 20})
    assert "cannot take n_factors = -1 or lr = nan:" in message
    assert "n_epochs" not in message


def test_learners_built_from_python_are_checked_too():
    """No allocation for ``n_factors = 1e9``: refused at construction, before any fit."""
    with pytest.raises(DataleverError, match="n_factors must be an integer"):
        BiasedMF(n_factors=10**9)
    with pytest.raises(DataleverError, match="k must be an integer"):
        UserKNN(k=0)
    with pytest.raises(DataleverError, match="min_sim must be a finite number above 0"):
        CenteredItemKNN(min_sim=NAN)
    with pytest.raises(DataleverError, match="regularization must be"):
        EASE(regularization=-1.0)


def test_a_spec_with_a_bad_parameter_is_refused_when_read():
    text = SMALL_SPEC.replace('name = "popularity"', 'name = "biased_mf"\nn_epochs = 0')
    with pytest.raises(DataleverError, match="'biased_mf' cannot take n_epochs = 0"):
        parse_spec(text)
    text = SMALL_SPEC.replace('name = "popularity"', 'name = "ease"\nregularization = inf')
    with pytest.raises(DataleverError, match="cannot take regularization = inf"):
        parse_spec(text)


# ------------------------------------------------------------------------------ accepted


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_defaults_pass_their_own_config_and_match_the_constructor(learner):
    cls = LEARNERS[learner]
    config = cls.Config.model_validate({})
    signature = inspect.signature(cls.__init__).parameters
    defaults = {
        n: p.default
        for n, p in signature.items()
        if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)  # object.__init__
    }
    assert defaults == config.model_dump()
    assert make_learner(learner).params() == config.model_dump()


GOOD = [
    # The repo's own values (examples, specs, benchmarks, tests) and the bounds themselves.
    ("biased_mf", {"n_factors": 100, "n_epochs": 20, "lr": 0.005, "reg": 0.02}),
    ("biased_mf", {"n_factors": 1, "n_epochs": 1, "lr": 1, "reg": 0, "init_std": 10}),
    ("biased_mf", {"n_factors": 1024, "n_epochs": 1000, "lr": 1e-300, "reg": 100.0}),
    ("biased_mf", {"n_factors": 8, "n_epochs": 30, "lr": 0.1, "reg": 0.0, "seed": 2**63 - 1}),
    ("biased_mf", {"init_std": 0.1, "seed": 2**32, "backend": "numba"}),
    ("biased_mf", {"backend": "torch", "device": "cpu"}),
    ("biased_mf", {"backend": "torch", "device": "cuda:1"}),
    ("user_knn", {"k": 40, "min_k": 1, "similarity": "msd"}),
    ("user_knn", {"k": 2, "min_k": 2, "similarity": "cosine"}),
    ("item_knn", {"k": 1, "min_k": 0}),
    ("item_knn", {"k": 10_000, "min_k": 10_000}),
    ("item_knn_centered", {"k": 20, "min_k": 1, "min_sim": 1e-6}),
    ("item_knn_centered", {"min_sim": 1, "k": 10_000}),
    ("ease", {"regularization": 500.0}),
    ("ease", {"regularization": 0.5}),
    ("ease", {"regularization": 1_000_000}),
]


@pytest.mark.parametrize(("learner", "params"), GOOD, ids=repr)
def test_good_values_are_taken_exactly_as_given(learner, params):
    given = dict(params)
    built = make_learner(learner, params).params()
    assert params == given  # the caller's dict is left alone
    for name, value in params.items():
        assert built[name] == value
        assert type(built[name]) is type(value) or isinstance(built[name], float)


def test_numpy_scalars_are_their_python_values_but_numpy_booleans_are_not_numbers():
    assert UserKNN(k=np.int64(5)).k == 5 and type(UserKNN(k=np.int64(5)).k) is int
    assert ItemKNN(k=np.int32(3)).k == 3
    assert EASE(regularization=np.float32(2.5)).regularization == 2.5
    with pytest.raises(DataleverError, match="k must be an integer"):
        UserKNN(k=np.bool_(True))


# ------------------------------------------------------------------------------ fuzzing

JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["auto", "numba", "torch", "msd", "cosine", "cuda", "cpu", "cuda:0"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)
PARAMETERS = [(n, f) for n, c in sorted(LEARNERS.items()) for f in c.Config.model_fields]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(PARAMETERS),
    st.dictionaries(st.sampled_from(sorted({f for _, f in PARAMETERS})), JSON_LIKE, max_size=3),
    JSON_LIKE,
)
def test_any_json_like_value_is_taken_as_given_or_refused_cleanly(target, others, value):
    learner, name = target
    params = {**others, name: value}
    try:
        built = make_learner(learner, params).params()
    except DataleverError as e:
        assert "\n" not in str(e) and len(str(e)) < 1500
        return
    for key, given_value in params.items():
        assert built[key] == given_value
        assert not isinstance(built[key], bool)
