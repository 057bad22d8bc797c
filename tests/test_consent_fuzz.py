"""Fuzzing consent: every case of :mod:`tests.fuzz.consent` (the ``optout`` lever's parameters,
``consent filter`` and ``registry account`` / ``token`` against registries broken in every way,
outputs that must never be written, lists of every odd kind, a served registry that is not
there), run through the real command line. Each must end without a traceback, a hang or an
echoed control character, refused ones with exit 2, one paragraph and every stored byte
unchanged.
"""

from __future__ import annotations

import json

import pytest

from tests.fuzz.consent import CLOSED, ENV, LIST, consent_cases, seeded
from tests.fuzz.harness import make_template_store, run_case

CASES = consent_cases()


@pytest.fixture(scope="module")
def template_store(tmp_path_factory, ml100k):
    return make_template_store(tmp_path_factory.mktemp("consent-fuzz") / "template.sqlite")


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name[:90] for c in CASES])
def test_consent_input_is_refused_cleanly(index, template_store, tmp_path):
    outcome = run_case(CASES[index], tmp_path, template_store)
    assert outcome.passed, f"{outcome.problem}\n{outcome.output}"


# ----------------------------------------------------------------------------- what a clean
# exit cannot show


def _invoke(argv: list[str], folder, env: dict | None = None):
    import os

    from typer.testing import CliRunner

    from datalever.cli import app

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(app, argv, env={**ENV, **(env or {})})
    finally:
        os.chdir(cwd)


def test_an_unreachable_served_registry_drops_everything_and_finishes(tmp_path):
    """Fail closed: a registry that cannot be reached allows nothing, yet the filter finishes
    (exit 0) with a note, and the manifest says for each work why it was dropped."""
    (tmp_path / "list.txt").write_bytes(LIST)
    argv = ["consent", "filter", "list.txt", "--list", "--registry", f"http://{CLOSED}"]
    result = _invoke([*argv, "--token", "t", "--timeout", "5", "--out", "out"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "no usable answer" in result.output
    assert (tmp_path / "out" / "kept.txt").read_text() == ""
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["output"]["lines"] == 0 and len(manifest["dropped"]) == 3
    assert manifest["consent"]["failed_closed"] == 2


def test_reading_consent_never_creates_a_registry(tmp_path, ml100k, monkeypatch):
    """A mistyped registry path, a blank one or none at all (the user data folder's, not
    there yet) is refused, and leaves no new, empty registry behind (which would then answer
    for nobody)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "list.txt").write_bytes(LIST)
    for where in (["--registry", "typo.sqlite"], ["--registry", "sub/typo.sqlite"], []):
        argv = ["consent", "filter", "list.txt", "--list", *where, "--out", "out"]
        result = _invoke(argv, tmp_path)
        assert result.exit_code == 2 and "no registry" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]
    from datalever.levers.optout import OptOut

    for registry in ("typo.sqlite", "   "):
        with pytest.raises(Exception, match="no registry|blank"):
            OptOut(registry=registry).reserved(ml100k, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


def test_a_refused_registry_command_adds_no_event(tmp_path):
    """The registry's own count of events, not only its bytes, is unchanged by a refusal."""
    from datalever.registry import Registry

    (tmp_path / "reg.sqlite").write_bytes(seeded())
    with Registry(tmp_path / "reg.sqlite") as reg:
        before = reg.event_count()
    for argv in (
        ["registry", "account", "\x1b[2J", "--url", "reg.sqlite"],
        ["registry", "token", "root", "--url", "reg.sqlite"],
        ["registry", "token", "contributor", "--account", "999", "--url", "reg.sqlite"],
    ):
        assert _invoke(argv, tmp_path).exit_code == 2
    with Registry(tmp_path / "reg.sqlite") as reg:
        assert reg.event_count() == before
