"""The fail-closed client against real servers on 127.0.0.1: the registry app under uvicorn
(in a thread, and as the ``serve`` command in a subprocess), and small socket servers that
misbehave in each way a network or a broken registry can. Whatever goes wrong, every work
concerned comes back reserved, with the reason."""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from datalever.errors import DataleverError
from datalever.registry import Registry
from datalever.registry import server as server_module
from datalever.registry.api import create_app
from datalever.registry.client import RegistryClient

A_WORK = "https://ann.example/a.png"
WORKS = [A_WORK, "https://bob.example/b.png", "sha256:" + "ab" * 32]


# --- real servers -----------------------------------------------------------------------------


@contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def registry(tmp_path):
    reg = Registry(tmp_path / "registry.sqlite")
    reg.set_dataset_policy("crawl", "opt-out")
    ann = reg.create_account("ann")
    reg.register_work(ann, A_WORK)
    reg.set_preference(ann, "train-ai", "reserved", work=A_WORK)
    yield reg
    reg.close()


@pytest.fixture
def served(registry) -> Iterator[tuple[str, str]]:
    """(base URL, pipeline token) of the real app."""
    with uvicorn_thread(create_app(registry, rate_limit=None)) as base:
        yield base, registry.issue_token("pipeline")


def test_check_against_the_real_app_in_chunks(served, registry):
    base, token = served
    works = WORKS + [f"https://site.example/{i}" for i in range(12_000)]
    with RegistryClient(base, token, timeout=30, chunk=5_000) as client:
        got = client.check("crawl", works, "train-genai")
    expected = registry.decide("crawl", works, "train-genai")
    assert [d.work for d in got] == works  # as given, in order
    assert [(d.outcome, d.rule, d.snapshot, d.event_id) for d in got] == [
        (d.outcome, d.rule, d.snapshot, d.event_id) for d in expected
    ]
    assert got[0].outcome == "reserved" and not got[0].failed_closed
    assert got[1].outcome == "allowed"


def test_as_of_and_malformed_works_alone_are_reserved(served, registry):
    base, token = served
    before = datetime.now(UTC) - timedelta(days=1)
    registry.set_dataset_policy("later", "opt-out")
    works = [A_WORK, "ftp://not/a/work", WORKS[1]]
    with RegistryClient(base, token) as client:
        got = client.check("crawl", works, "train-ai")
        assert [d.outcome for d in got] == ["reserved", "reserved", "allowed"]
        assert got[1].failed_closed and "malformed work id" in got[1].rule
        assert not got[0].failed_closed and not got[2].failed_closed
        early = client.check("later", [WORKS[1]], "train-ai", as_of=before)
        assert early[0].outcome == "reserved" and "HTTP 422" in early[0].rule
        assert "no declared policy as of" in early[0].rule
        assert client.check("crawl", [], "train-ai") == []
    with pytest.raises(DataleverError, match="list of work ids"):
        RegistryClient(base, token).check("crawl", A_WORK, "train-ai")


def test_refusals_by_the_real_app_are_all_reserved(registry):
    app = create_app(registry, rate_limit=None, max_works=10)
    with uvicorn_thread(app) as base:
        pipeline = registry.issue_token("pipeline")
        big = [f"https://site.example/{i}" for i in range(25)]
        with RegistryClient(base, pipeline, chunk=20) as client:
            got = client.check("crawl", big, "train-ai")
        # the server's cap is 10: the first chunk of 20 is refused whole, the last 5 fit
        assert all(d.outcome == "reserved" and d.failed_closed for d in got[:20])
        assert "HTTP 413" in got[0].rule and "at most 10" in got[0].rule
        assert not any(d.failed_closed for d in got[20:])
        with RegistryClient(base, pipeline, chunk=10) as client:
            assert not any(d.failed_closed for d in client.check("crawl", big, "train-ai"))
        with RegistryClient(base, "not-a-token") as client:
            got = client.check("crawl", WORKS, "train-ai")
        assert all(d.outcome == "reserved" for d in got)
        assert "HTTP 401" in got[0].rule and "Unknown or revoked" in got[0].rule


def wait_until_serving(server: subprocess.Popen, base: str, seconds: float) -> None:
    """Until the server at ``base`` answers its health check (it must not exit first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            assert httpx.get(f"{base}/v1/health").json()["status"] == "ok"
            return
        except httpx.HTTPError:
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


def test_serve_with_two_worker_processes(tmp_path, registry):
    """Two server processes share the port and the registry; without a shared secret the
    command refuses to start them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from datalever.registry.cli import registry_app; registry_app()",
        "serve",
        "--url",
        str(tmp_path / "registry.sqlite"),
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    bare = {k: v for k, v in os.environ.items() if not k.startswith("DATALEVER_REGISTRY")}
    refused = subprocess.run(command, env=bare, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "DATALEVER_REGISTRY_SECRET" in refused.stderr
    env = bare | {"DATALEVER_REGISTRY_SECRET": "s" * 40}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, 60)
        with RegistryClient(base, registry.issue_token("pipeline")) as client:
            for _ in range(20):  # spread over both workers
                got = client.check("crawl", WORKS, "train-ai")
                assert [d.outcome for d in got] == ["reserved", "allowed", "allowed"]
    finally:
        server.terminate()
        server.wait(20)


def _server_processes(pid: int) -> set[int]:
    """The server processes the supervisor ``pid`` started (Linux's /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
            except OSError:  # exited meanwhile
                pass
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_serve_workers_replace_a_killed_process_and_refuse_a_taken_port(tmp_path, registry):
    """A server process killed while serving is replaced and checks go on being answered; a
    port another program listens on is a clear error, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [
            sys.executable,
            "-c",
            "from datalever.registry.cli import registry_app; registry_app()",
            "serve",
            "--url",
            str(tmp_path / "registry.sqlite"),
            "--port",
            str(port),
            "--workers",
            "2",
        ]
        env = os.environ | {"DATALEVER_REGISTRY_SECRET": "s" * 40}
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"Cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert "Traceback" not in refused.stderr

    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, 60)
        deadline = time.monotonic() + 60
        while len(workers := _server_processes(server.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(float(server_module.START_GRACE_S))  # past the start-up grace
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in (now := _server_processes(server.pid)) or len(now - workers) < 1:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with RegistryClient(base, registry.issue_token("pipeline")) as client:
            for _ in range(20):
                got = client.check("crawl", WORKS, "train-ai")
                assert [d.outcome for d in got] == ["reserved", "allowed", "allowed"]
        server.terminate()
        server.wait(30)
        assert server.returncode == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in now)  # all stopped
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(20)


def test_serve_command_in_a_subprocess(tmp_path, registry):
    """The real command line: uvicorn in its own process, the admin secret from a file."""
    secret = tmp_path / "admin-token"
    secret.write_text("z" * 48)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from datalever.registry.cli import registry_app; registry_app()",
        "serve",
        "--url",
        str(tmp_path / "registry.sqlite"),
        "--port",
        str(port),
        "--admin-token-file",
        str(secret),
    ]
    env = {k: v for k, v in os.environ.items() if k != "DATALEVER_REGISTRY_ADMIN_TOKEN"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, 30)
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {'z' * 48}"})
        assert me.json() == {"scope": "admin", "account_id": None}
        with RegistryClient(base, registry.issue_token("pipeline")) as client:
            got = client.check("crawl", WORKS, "train-ai")
        assert [d.outcome for d in got] == ["reserved", "allowed", "allowed"]
    finally:
        server.terminate()
        server.wait(10)


# --- misbehaving servers ----------------------------------------------------------------------

Behaviour = Callable[[socket.socket, bytes, threading.Event], None]


@contextmanager
def raw_server(behave: Behaviour) -> Iterator[str]:
    """A socket server on 127.0.0.1 that reads one HTTP request per connection and then
    lets ``behave`` answer (or not) on the raw socket."""
    stop = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                body += self.request.recv(65536)
            behave(self.request, body, stop)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def respond(status: str, body: bytes, content_type: str = "application/json") -> Behaviour:
    def behave(sock: socket.socket, _request: bytes, _stop: threading.Event) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)

    return behave


def answer_with(make: Callable[[list[str]], object]) -> Behaviour:
    """A 200 JSON answer computed from the works asked about."""

    def behave(sock: socket.socket, request: bytes, stop: threading.Event) -> None:
        body = json.dumps(make(json.loads(request)["works"])).encode()
        respond("200 OK", body)(sock, request, stop)

    return behave


def decision(work: str, **changes) -> dict:
    from datalever.registry import parse_work

    d = {
        "work": parse_work(work)[1],
        "outcome": "allowed",
        "rule": "opt-out dataset: no recorded reservation → allowed",
        "snapshot": 7,
        "event_id": None,
    }
    return {k: v for k, v in (d | changes).items() if v is not ...}


def hang(sock: socket.socket, _request: bytes, stop: threading.Event) -> None:
    stop.wait(30)


def drip(sock: socket.socket, _request: bytes, stop: threading.Event) -> None:
    """Headers, then one byte of body at a time, each well within the read timeout."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    sock.sendall(b"Content-Length: 1000000\r\n\r\n")
    while not stop.wait(0.1):
        try:
            sock.sendall(b" ")
        except OSError:
            return


def close_at_once(sock: socket.socket, _request: bytes, _stop: threading.Event) -> None:
    sock.shutdown(socket.SHUT_RDWR)


def cut_short(sock: socket.socket, _request: bytes, _stop: threading.Event) -> None:
    """Promises 5,000 bytes, sends a few, closes."""
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"decisions": [')
    sock.shutdown(socket.SHUT_RDWR)


def all_allowed(works: list[str]) -> dict:
    return {"decisions": [decision(w) for w in works]}


MISBEHAVIOURS = {
    "hangs past the timeout": (hang, "registry timed out: ReadTimeout"),
    "drips bytes forever": (drip, "registry timed out: ReadTimeout no full answer within"),
    "closes the connection": (close_at_once, "registry connection failed: RemoteProtocolError"),
    "cuts the body short": (cut_short, "registry connection failed: RemoteProtocolError"),
    "answers 500": (
        respond("500 Internal Server Error", b'{"problem": "boom", "fix": "later"}'),
        "registry answered HTTP 500: boom Fix: later",
    ),
    "answers 503 in HTML": (
        respond("503 Service Unavailable", b"<h1>down</h1>", "text/html"),
        "registry answered HTTP 503: <h1>down</h1>",
    ),
    "redirects": (respond("302 Found", b""), "registry answered HTTP 302: (empty body)"),
    "answers junk": (respond("200 OK", b"\x00\xffjunk"), "registry answer unusable: not JSON"),
    "answers truncated JSON": (
        respond("200 OK", json.dumps(all_allowed(WORKS)).encode()[:-20]),
        "registry answer unusable: not JSON",
    ),
    "answers a JSON list": (respond("200 OK", b"[]"), "no list of decisions"),
    "answers too few decisions": (
        answer_with(lambda works: all_allowed(works[:-1])),
        "registry answer unusable: 2 decisions for 3 works",
    ),
    "answers too many decisions": (
        answer_with(lambda works: all_allowed(works + works)),
        "6 decisions for 3 works",
    ),
    "answers an unknown outcome": (
        answer_with(lambda ws: {"decisions": [decision(w, outcome="maybe") for w in ws]}),
        "unknown outcome 'maybe'",
    ),
    "leaves out the outcome": (
        answer_with(lambda ws: {"decisions": [decision(w, outcome=...) for w in ws]}),
        "unknown outcome 'None'",
    ),
    "leaves out the rule": (
        answer_with(lambda ws: {"decisions": [decision(w, rule=...) for w in ws]}),
        "a decision has no rule",
    ),
    "leaves out the snapshot": (
        answer_with(lambda ws: {"decisions": [decision(w, snapshot=...) for w in ws]}),
        "a decision has no snapshot id",
    ),
    "answers a text snapshot": (
        answer_with(lambda ws: {"decisions": [decision(w, snapshot="7") for w in ws]}),
        "a decision has no snapshot id",
    ),
    "answers out of order": (
        answer_with(lambda ws: {"decisions": [decision(w) for w in reversed(ws)]}),
        "decisions out of order",
    ),
    "answers with non-objects": (
        answer_with(lambda ws: {"decisions": ["allowed" for _ in ws]}),
        "a decision is not an object",
    ),
}


@pytest.mark.parametrize("name", MISBEHAVIOURS)
def test_a_misbehaving_registry_reserves_every_work(name):
    behave, reason = MISBEHAVIOURS[name]
    with raw_server(behave) as base, RegistryClient(base, "token", timeout=1.0) as client:
        start = time.monotonic()
        got = client.check("crawl", WORKS, "train-ai")
        seconds = time.monotonic() - start
    assert len(got) == len(WORKS) and [d.work for d in got] == WORKS
    assert all(d.outcome == "reserved" and d.failed_closed for d in got)
    assert all(reason in d.rule for d in got), got[0].rule
    assert seconds < 5, f"{name} held the client {seconds:.1f} s"


def test_a_well_behaved_raw_server_is_believed():
    """The misbehaviours above differ from this answer in one way each."""
    with raw_server(answer_with(all_allowed)) as base, RegistryClient(base, "t") as client:
        got = client.check("crawl", WORKS, "train-ai")
    assert [d.outcome for d in got] == ["allowed"] * 3 and not got[0].failed_closed


def test_an_unreachable_registry_reserves_every_work():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once it is closed
    with RegistryClient(f"http://127.0.0.1:{port}", "token", timeout=2) as client:
        got = client.check("crawl", WORKS, "train-ai")
    assert all(d.outcome == "reserved" for d in got)
    assert got[0].rule.startswith("reserved by the client: registry unreachable: ConnectError")


def test_a_registry_that_cannot_be_reached_is_asked_once_per_check():
    """A hanging registry costs one timeout, not one per chunk."""
    calls = []

    def count_and_hang(sock: socket.socket, request: bytes, stop: threading.Event) -> None:
        calls.append(request)
        hang(sock, request, stop)

    with (
        raw_server(count_and_hang) as base,
        RegistryClient(base, "t", timeout=0.5, chunk=1) as client,
    ):
        got = client.check("crawl", WORKS, "train-ai")
    assert len(calls) == 1 and all(d.failed_closed for d in got)
    assert "registry timed out" in got[0].rule
    assert got[2].rule.endswith("(on an earlier call of this check)")


def test_one_failed_chunk_reserves_only_its_works():
    """Chunks are independent: a server that refuses the second call of two leaves the first
    call's answers standing."""
    calls = []

    def second_fails(sock: socket.socket, request: bytes, stop: threading.Event) -> None:
        calls.append(request)
        if len(calls) == 2:
            return respond("500 Internal Server Error", b"{}")(sock, request, stop)
        answer_with(all_allowed)(sock, request, stop)

    with raw_server(second_fails) as raw, RegistryClient(raw, "t", chunk=2) as client:
        got = client.check("crawl", WORKS + [A_WORK], "train-ai")
    assert [d.outcome for d in got] == ["allowed", "allowed", "reserved", "reserved"]
    assert [d.failed_closed for d in got] == [False, False, True, True]


def test_client_arguments_are_checked():
    with pytest.raises(DataleverError, match="chunk"):
        RegistryClient("http://127.0.0.1:1", "t", chunk=0)
    with pytest.raises(DataleverError, match="timeout"):
        RegistryClient("http://127.0.0.1:1", "t", timeout=0)
