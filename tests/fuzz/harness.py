"""Run a fuzz case through the real command line, in this process, and judge it.

A case passes when the command ends within its time limit, without a traceback, with the exit
code its ``expect`` allows (2 and an error paragraph for ``"refused"``), without printing a
control character (one echoed from the input could clear the screen or retitle the terminal),
and, when refused, without changing a byte of any file that was there before (the results store
above all).

:func:`run_isolated` runs a list of cases in a child process under a memory limit, for cases
whose failure could be a runaway allocation rather than an exception.
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


def _control_characters(text: str) -> str:
    """The control characters in ``text`` other than line breaks and tabs: echoed from the
    input, they would move the cursor, clear the screen or ring the bell of whoever reads it."""
    import unicodedata

    odd = sorted({c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"})
    return "".join(repr(c)[1:-1] for c in odd)


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
    echoed = _control_characters(output)
    if echoed:
        return Outcome(case, code, output, f"the output echoes control characters {echoed}")
    if code == 2:
        changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
        if changed:
            return Outcome(case, code, output, f"refused, but changed {', '.join(changed)}")
    return Outcome(case, code, output, None)


# ----------------------------------------------------------------------------- in a child


#: Address space of the child process that runs cases in isolation: a case that allocates
#: without bound (junk examples by the million, texts hashed into a million columns) then
#: meets a MemoryError instead of taking the machine's memory.
CHILD_MEMORY_BYTES = 4 << 30
#: Seconds a child may take past a case's own time limit before it is killed: the in-process
#: alarm cannot interrupt one long call into compiled code (a BLAS solve, a parser).
CHILD_GRACE_S = 15


def _child(factory: str, indices: list[int], root: str, template: str) -> None:
    """Run cases one by one under a memory limit, announcing each on stdout."""
    import importlib
    import json
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    module, _, function = factory.partition(":")
    cases = getattr(importlib.import_module(module), function)()
    for i in indices:
        print(json.dumps({"start": i}), flush=True)
        outcome = run_case(cases[i], Path(root) / f"case{i}", Path(template))
        done = {"done": i, "problem": outcome.problem, "output": outcome.output[-3000:]}
        print(json.dumps(done), flush=True)


def run_isolated(
    factory: str, indices: list[int], root: Path, template: Path
) -> dict[int, tuple[str | None, str]]:
    """Run the cases at ``indices`` of the list ``factory`` ("module:function") returns, in a
    child process under :data:`CHILD_MEMORY_BYTES`, from the repository root. Returns each
    case's problem (None when it passed) and output. A case that kills the child (the kernel's
    OOM killer, a crash in compiled code) or outlives its time limit fails, and the rest run in
    a new child."""
    import json
    import queue
    import subprocess
    import sys
    import threading
    import time

    results: dict[int, tuple[str | None, str]] = {}
    pending = list(indices)
    repo = Path(__file__).resolve().parents[2]
    while pending:
        code = (
            "from tests.fuzz.harness import _child; "
            f"_child({factory!r}, {pending!r}, {str(root)!r}, {str(template)!r})"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream=child.stdout, sink=lines) -> None:
            for line in stream:
                sink.put(line)
            sink.put(None)

        threading.Thread(target=pump, daemon=True).start()
        current: int | None = None
        started = False
        deadline = time.monotonic() + 120  # the child's imports
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                child.kill()
                if current is None:
                    raise RuntimeError("the fuzz child did not start") from None
                results[current] = (f"no answer within {TIME_LIMIT_S} s (a hang)", "")
                break
            if line is None:
                child.wait()
                if current is not None and current not in results:
                    results[current] = (f"the process died (exit {child.returncode})", "")
                elif not started:
                    raise RuntimeError(f"the fuzz child failed to start ({child.returncode})")
                break
            if not line.startswith("{"):
                continue  # something a case printed straight to stdout
            message = json.loads(line)
            if "start" in message:
                current, started = message["start"], True
                deadline = time.monotonic() + TIME_LIMIT_S + CHILD_GRACE_S
            else:
                results[message["done"]] = (message["problem"], message["output"])
                current = None
        child.wait()
        pending = [i for i in pending if i not in results]
    return results
