"""Serving the registry from several processes on one port.

Each process listens on a socket of its own, bound with ``SO_REUSEPORT``, so the kernel spreads
new connections over the processes evenly. With one shared socket (uvicorn's own ``workers``),
a pipeline that opens its keep-alive connections at once finds them all in whichever process
woke first, and the other processes idle. A supervisor restarts a process that dies while
serving, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time
from typing import Any

from datalever.errors import DataleverError

START_GRACE_S = 10.0  # a process that exits sooner than this after starting failed to start


def listening_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket on ``host:port`` that other processes of this user may bind too.

    It is made with ``IPPROTO_TCP`` named: asyncio turns Nagle's algorithm off only on
    sockets that say they are TCP, and with it on, every answer written in two parts waits
    for the client's delayed acknowledgement (40 ms)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
    except socket.gaierror as e:
        raise DataleverError(
            f"Cannot resolve the host {host!r} ({e}).", "give an address such as 127.0.0.1."
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(2048)
    except OSError as e:
        sock.close()
        raise DataleverError(
            f"Cannot listen on {host}:{port} ({e.strerror or e}).",
            "stop what holds that port, or give another with --port.",
        ) from None
    return sock


def _serve_one(host: str, port: int, log_level: str) -> None:
    """One server process: the app from the environment, on a socket of its own."""
    import uvicorn

    from datalever.registry.api import app_from_environment

    try:
        app = app_from_environment()
        sock = listening_socket(host, port)
    except DataleverError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    config = uvicorn.Config(app, log_level=log_level, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve_processes(host: str, port: int, workers: int, log_level: str = "info") -> None:
    """``workers`` server processes on ``host:port`` until SIGINT or SIGTERM. The app comes
    from the environment (``api.app_from_environment``)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise DataleverError(
            "This system cannot give several processes one port (no SO_REUSEPORT).",
            "serve with --workers 1, or run one server per port behind a proxy.",
        )
    holder = listening_socket(host, port, listen=False)  # the port is ours, or a clear error
    context = multiprocessing.get_context("spawn")
    started: dict[Any, float] = {}

    def start() -> Any:
        process = context.Process(target=_serve_one, args=(host, port, log_level), daemon=True)
        process.start()
        started[process] = time.monotonic()
        return process

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.5)
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started[process] < START_GRACE_S:
                    raise DataleverError(
                        f"A server process exited as it started (code {process.exitcode}); "
                        "its message is above.",
                        "fix what it names, then start the registry again.",
                    )
                print(
                    f"A server process exited (code {process.exitcode}); starting another.",
                    file=sys.stderr,
                    flush=True,
                )
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join()
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
