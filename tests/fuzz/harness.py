"""Run a fuzz case through the real command line, in this process, and judge it.

A case passes when the command ends within its time limit, without a traceback, with the exit
code its ``expect`` allows (2 and an error paragraph for ``"refused"``), and, when refused,
without changing a byte of any file that was there before (the results store above all).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from datalever.cli import app
from tests.fuzz.cases import STORE, Case

TIME_LIMIT_S = 30


class Hang(Exception):
    """The command did not finish within the time limit."""


@dataclass
class Outcome:
    case: Case
    exit_code: int | None
    output: str
    problem: str | None  # None when the case passed

    @property
    def passed(self) -> bool:
        return self.problem is None


def make_template_store(path: Path) -> Path:
    """A real results store holding one finished run (the base spec's), to point cases at."""
    from datalever.engine import run_spec
    from datalever.spec import spec_from_dict
    from datalever.store import ResultsStore
    from tests.fuzz.cases import BASE_SPEC

    run_spec(spec_from_dict(BASE_SPEC), ResultsStore(path))
    return path


def _damage(template: Path, dest: Path, offset: int, length: int) -> None:
    blob = bytearray(template.read_bytes())
    for i in range(offset, min(offset + length, len(blob))):
        blob[i] = (0xA5 ^ i) & 0xFF
    dest.write_bytes(bytes(blob))


def _prepare(case: Case, folder: Path, template: Path) -> list[str]:
    for name, blob in case.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(blob)
    argv = []
    for arg in case.argv:
        if arg == STORE:
            shutil.copyfile(template, folder / "store.sqlite")
            arg = "store.sqlite"
        elif arg.startswith("{damage:"):
            offset, length = map(int, arg.strip("{}").split(":")[1:])
            _damage(template, folder / "damaged.sqlite", offset, length)
            arg = "damaged.sqlite"
        argv.append(arg)
    return argv


def _hashes(folder: Path) -> dict[str, str]:
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@contextmanager
def _time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_case(case: Case, folder: Path, template: Path, limit_s: int = TIME_LIMIT_S) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    argv = _prepare(case, folder, template)
    before = _hashes(folder)
    env = {"DATALEVER_STORE": None, **case.env}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with _time_limit(limit_s):
            result = CliRunner().invoke(app, argv, env=env, catch_exceptions=True)
    except Hang as e:
        return Outcome(case, None, "", str(e))
    finally:
        os.chdir(cwd)
    return judge(case, result.exit_code, result.output, result.exception, before, _hashes(folder))


def judge(
    case: Case,
    code: int | None,
    output: str,
    exc: BaseException | None,
    before: dict[str, str],
    after: dict[str, str],
) -> Outcome:
    """The verdict on one finished command (separate from running it, so it can be tested)."""
    if isinstance(exc, Hang):
        return Outcome(case, code, output, str(exc))
    if exc is not None and not isinstance(exc, SystemExit):
        return Outcome(case, code, output, f"traceback: {type(exc).__name__}: {exc}"[:500])
    if "Traceback" in output:
        return Outcome(case, code, output, "a traceback was printed")
    allowed = {2} if case.expect == "refused" else {0, 2}
    if code not in allowed:
        return Outcome(case, code, output, f"exit code {code}, expected {sorted(allowed)}")
    if code == 2 and "Error" not in output:
        return Outcome(case, code, output, "refused without an error message")
    if code == 2:
        changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
        if changed:
            return Outcome(case, code, output, f"refused, but changed {', '.join(changed)}")
    return Outcome(case, code, output, None)
