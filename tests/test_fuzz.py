"""Fuzzing every input: a seeded sample of the bad specs, learner parameters, flags and stores of
:mod:`tests.fuzz.cases`, each run through the real command line. Every one must end without a
traceback or a hang, refused ones with exit 2 and one paragraph, and nothing stored may change.
``python -m tests.fuzz`` runs all of them."""

from __future__ import annotations

import random

import pytest

from tests.fuzz.cases import all_cases
from tests.fuzz.harness import make_template_store, run_case

SAMPLE = 200
CASES = all_cases()
SAMPLED = sorted(random.Random(0).sample(range(len(CASES)), min(SAMPLE, len(CASES))))


@pytest.fixture(scope="module")
def template_store(tmp_path_factory, ml100k):
    return make_template_store(tmp_path_factory.mktemp("fuzz") / "template.sqlite")


@pytest.mark.parametrize("index", SAMPLED, ids=[CASES[i].name[:80] for i in SAMPLED])
def test_bad_input_is_refused_cleanly(index, template_store, tmp_path):
    outcome = run_case(CASES[index], tmp_path, template_store)
    assert outcome.passed, f"{outcome.problem}\n{outcome.output}"


def test_the_harness_catches_what_it_must(template_store, tmp_path):
    """The judge itself: a case that succeeds where a refusal is expected fails, and so does a
    refused case that changes the store."""
    from tests.fuzz.cases import STORE, Case

    accepted = Case("a valid command", ["runs", "--store", STORE])
    assert run_case(accepted, tmp_path / "a", template_store).problem == (
        "exit code 0, expected [2]"
    )
    assert run_case(
        Case("valid, either", ["runs", "--store", STORE], expect="either"),
        tmp_path / "b",
        template_store,
    ).passed
