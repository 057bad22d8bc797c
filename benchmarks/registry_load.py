"""Load on the consent registry's real HTTP server over loopback: single checks per second with
their latency, and the wall time of a 10,000-work bulk check, on SQLite and, given a server,
PostgreSQL.

    python benchmarks/registry_load.py [--postgres postgresql://USER@HOST/DB] [--quick]

The server is the real command, ``datalever registry serve --workers N``, in processes of its
own. Single checks come from ``wrk`` (Debian's
package: a C load generator that costs the machine little) when it is installed, else from
async httpx clients in this process, which cost more CPU per request than the server does
(``--client`` chooses). That run is closed-loop: each connection sends its next request as its
answer arrives, so it finds the most requests per second the machine gives, with the latency of
a saturated machine. A second run, paced at ``--rate`` (500/s, the goal) by Debian's ``hey``
when it is installed, gives the latency at that load: the goal's p99 is judged there. The serve
command's rate limiter (20 requests/s per token) would turn
most of this load into 429s, so the server is started with the limiter off unless --limiter says
otherwise; 429s are counted apart from failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GOAL_RPS, GOAL_P99_MS, GOAL_BULK_S = 500.0, 50.0, 1.0


@dataclass
class Server:
    """A registry server process on 127.0.0.1."""

    base: str
    process: subprocess.Popen

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no rollback by the server itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def serve(url: str, *, limiter: str = "off", workers: int = 1) -> Iterator[Server]:
    """``datalever registry serve --workers N`` on the registry at ``url``, on a free port of
    127.0.0.1, until the block ends (then SIGTERM, which stops every server process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "DATALEVER_REGISTRY_RATE_LIMIT": "on" if limiter == "default" else "off",
        "DATALEVER_REGISTRY_SECRET": os.environ.get("DATALEVER_REGISTRY_SECRET")
        or uuid.uuid4().hex * 2,
    }
    command = [
        sys.executable, "-c", "from datalever.registry.cli import registry_app; registry_app()",
        "serve", "--url", url, "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        # Every process listening before any load: keep-alive connections opened while only
        # some listen would all stay on those.
        deadline = time.monotonic() + 60
        while _listeners(port) < workers or not _healthy(server.base):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stdout.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer within 60 s")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/v1/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (Linux's /proc/net/tcp; elsewhere, assume all are)."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 1 << 30
    return sum(
        1 for line in table if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
    )


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A throwaway database on ``server_url``'s server, dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"datalever_load_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = sa.engine.make_url(server_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


def seed(url: str, n_works: int, accounts: int = 100) -> tuple[list[str], str]:
    """``n_works`` works over ``accounts`` accounts, a quarter reserved for train-ai in the
    opt-out dataset "big" (as in the bulk test of test_registry_core), and a pipeline token.
    The works go in by direct inserts: the write path is not what is measured here."""
    import sqlalchemy as sa

    from datalever.registry import Registry, parse_work
    from datalever.registry import schema as s

    reg = Registry(url)
    reg.set_dataset_policy("big", "opt-out")
    owners = [reg.create_account(f"acct{i}") for i in range(accounts)]
    works = [f"https://site.example/w/{i}" for i in range(n_works)]
    refs = [parse_work(w)[1] for w in works]
    with reg._write("seeding") as conn:
        at = reg._append(conn, "work_registered")
        rows = [
            {"account_id": owners[i % accounts], "kind": "url", "ref": ref, "event_id": at}
            for i, ref in enumerate(refs)
        ]
        conn.execute(s.works.insert(), rows)
        ids = dict(conn.execute(sa.select(s.works.c.ref, s.works.c.id)).all())
        for i, ref in enumerate(refs[::4]):
            reg._append(
                conn,
                "preference_set",
                account_id=owners[(4 * i) % accounts],
                work_id=ids[ref],
                purpose="train-ai",
                value="reserved",
            )
    token = reg.issue_token("pipeline")
    reg.close()
    return works, token


@dataclass
class Singles:
    """What a run of single checks saw."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of 200 answers, in seconds
    limited: int = 0  # 429s
    failed: dict[str, int] = field(default_factory=dict)  # anything else, by status or error

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def single_checks(
    base: str, token: str, works: list[str], requests: int, concurrency: int, max_s: float
) -> Singles:
    """``requests`` GET /v1/checks of random works from ``concurrency`` clients at once (or
    until ``max_s`` seconds), each timed from send to the whole answer read."""
    seen = Singles()
    rng = random.Random(7)
    todo = iter(range(requests))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as c:
        start = time.perf_counter()
        deadline = start + max_s

        async def worker() -> None:
            for _ in todo:
                if time.perf_counter() > deadline:
                    return
                params = {
                    "dataset": "big",
                    "purpose": rng.choice(("train-ai", "train-genai")),
                    "work": rng.choice(works),
                }
                sent = time.perf_counter()
                try:
                    answer = await c.get("/v1/checks", params=params)
                    status = answer.status_code
                    ok = status == 200 and answer.json()["decisions"][0]["outcome"] in (
                        "allowed",
                        "reserved",
                    )
                except httpx.HTTPError as e:
                    status, ok = type(e).__name__, False
                if ok:
                    seen.latencies.append(time.perf_counter() - sent)
                elif status == 429:
                    seen.limited += 1
                else:
                    seen.failed[str(status)] = seen.failed.get(str(status), 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seen.seconds = time.perf_counter() - start
    return seen


WRK_SCRIPT = """
paths = {%s}
i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * _UNITS[unit]
    raise ValueError(f"not a wrk duration: {text!r}")


def wrk_checks(base: str, token: str, works: list[str], seconds: float, concurrency: int):
    """Single checks of 1,000 random works, in turn, from ``wrk`` with ``concurrency``
    connections for ``seconds``: (requests/s, p50 ms, p99 ms, answered, non-2xx)."""
    from urllib.parse import quote

    rng = random.Random(7)
    paths = ",".join(
        f'"/v1/checks?dataset=big&purpose={rng.choice(("train-ai", "train-genai"))}'
        f'&work={quote(w, safe="")}"'
        for w in rng.sample(works, min(1000, len(works)))
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % paths)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency",
             "-s", script.name, "-H", f"Authorization: Bearer {token}", base],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    fields = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("50%", "99%"):
            fields[words[0]] = _ms(words[1])
        elif line.startswith("Requests/sec:"):
            fields["rps"] = float(words[1])
        elif "requests in" in line:
            fields["answered"] = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            fields["non2xx"] = int(words[-1])
    return (
        fields["rps"],
        fields["50%"],
        fields["99%"],
        fields["answered"],
        fields.get("non2xx", 0),
    )


def paced_checks(base: str, token: str, work: str, rate: float, seconds: float, clients: int):
    """Single checks of one work at ``rate`` per second from ``hey`` (Debian's package):
    ``clients`` clients, each sending one request per tick of its own clock, for ``seconds``.
    A client whose answer comes after its next tick skips that tick, so the rate achieved is
    printed beside the one asked for. (achieved/s, p50 ms, p99 ms, answered, non-2xx)."""
    from urllib.parse import quote

    url = f"{base}/v1/checks?dataset=big&purpose=train-ai&work={quote(work, safe='')}"
    out = subprocess.run(
        ["hey", "-z", f"{max(1, round(seconds))}s", "-c", str(clients),
         "-q", f"{rate / clients:.3f}", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    fields: dict[str, float] = {"answered": 0, "other": 0}
    for line in out.splitlines():
        words = line.split()
        if line.strip().startswith("Requests/sec:"):
            fields["rps"] = float(words[1])
        elif len(words) >= 3 and words[0] in ("50%", "99%") and words[1] == "in":
            fields[words[0]] = 1000 * float(words[2])
        elif len(words) >= 2 and words[0].startswith("[") and words[1].isdigit():
            key = "answered" if words[0] == "[200]" else "other"
            fields[key] += int(words[1])
    answered, other = int(fields["answered"]), int(fields["other"])
    return fields["rps"], fields["50%"], fields["99%"], answered, other


def bulk_checks(base: str, token: str, works: list[str], repeats: int) -> tuple[list[float], int]:
    """Wall times of ``repeats`` POST /v1/checks of every work (after one untimed call), and
    how many calls failed."""
    body = {"dataset": "big", "purpose": "train-genai", "works": works}
    times, failed = [], 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(repeats + 1):
            start = time.perf_counter()
            answer = client.post("/v1/checks", json=body, timeout=60)
            decisions = answer.json().get("decisions", []) if answer.status_code == 200 else []
            seconds = time.perf_counter() - start
            if len(decisions) != len(works):
                failed += 1
            elif i:
                times.append(seconds)
    return times, failed


def measure(url: str, backend: str, args: argparse.Namespace) -> tuple[list[list[str]], int]:
    """Seed ``url``, serve it, load it: the table rows and the number of failed requests."""
    started = time.perf_counter()
    works, token = seed(url, args.works)
    seeded = time.perf_counter() - started
    with serve(url, limiter=args.limiter, workers=args.workers) as server:
        warm = asyncio.run(single_checks(server.base, token, works, 200, args.concurrency, 30))
        if args.client == "wrk":
            rps, p50, p99, done, non2xx = wrk_checks(
                server.base, token, works, args.seconds, args.concurrency
            )
            singles = Singles(seconds=done / rps if rps else 0.0)
            singles.failed = {"non-2xx": non2xx} if non2xx else {}
        else:
            singles = asyncio.run(
                single_checks(
                    server.base, token, works, args.requests, args.concurrency, args.max_seconds
                )
            )
            rps, done = singles.rps, len(singles.latencies)
            p50, p99 = singles.percentile_ms(0.50), singles.percentile_ms(0.99)
        paced = None
        if args.rate and shutil.which("hey"):
            paced = paced_checks(
                server.base, token, works[len(works) // 2], args.rate, args.seconds,
                args.concurrency,
            )  # fmt: skip
        times, bulk_failed = bulk_checks(server.base, token, works, args.repeats)
    failed = sum(singles.failed.values()) + sum(warm.failed.values()) + bulk_failed
    failed += paced[4] if paced else 0
    bulk = statistics.median(times) if times else float("nan")
    n = len(works)

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    rows = [
        [backend, f"seeded {n:,} works", f"{seeded:.1f} s", "", ""],
        [backend, f"single checks answered ({args.client})",
         f"{done:,} in {singles.seconds:.1f} s", "", ""],
        [backend, "single checks, most requests/s", f"{rps:.0f}", f">= {GOAL_RPS:.0f}",
         met(rps >= GOAL_RPS)],
        [backend, "single check p50 / p99, at most", f"{p50:.1f} / {p99:.1f} ms", "", ""],
        [backend, f"bulk check of {n:,} works, median", f"{bulk:.3f} s",
         f"< {GOAL_BULK_S:.0f} s" if n >= 10_000 else "", met(bulk < GOAL_BULK_S)],
        [backend, f"bulk check, best of {len(times)}", f"{min(times, default=float('nan')):.3f} s",
         "", ""],
        [backend, "429 (rate limited) / failed", f"{singles.limited} / {failed}", "0 failed",
         met(failed == 0)],
    ]  # fmt: skip
    if paced is not None:
        rows[4:4] = [
            [backend, f"paced at {args.rate:.0f}/s (hey): achieved", f"{paced[0]:.0f}/s", "", ""],
            [backend, f"paced at {args.rate:.0f}/s: p50 / p99", f"{paced[1]:.1f} / "
             f"{paced[2]:.1f} ms", f"p99 < {GOAL_P99_MS:.0f} ms", met(paced[2] < GOAL_P99_MS)],
        ]  # fmt: skip
    if singles.failed:
        rows.append([backend, "failures by status", str(singles.failed), "", ""])
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also a PostgreSQL server (a throwaway "
                        "database is created in it and dropped)")  # fmt: skip
    parser.add_argument("--works", type=int, default=10_000, help="works seeded and bulk-checked")
    parser.add_argument("--requests", type=int, default=5_000, help="single checks timed")
    parser.add_argument("--concurrency", type=int, default=8, help="single checks in flight")
    parser.add_argument("--max-seconds", type=float, default=60, help="cap on the single checks")
    parser.add_argument("--repeats", type=int, default=5, help="bulk checks timed (median)")
    parser.add_argument("--limiter", choices=("off", "default"), default="off",
                        help="the server's rate limiter: off, or the serve command's 20/s per "
                        "token")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="server processes on the port")
    parser.add_argument(
        "--client",
        choices=("wrk", "httpx"),
        default="wrk" if shutil.which("wrk") else "httpx",
        help="the single checks' load generator (default: wrk if installed)",
    )
    parser.add_argument(
        "--seconds", type=float, default=15, help="wrk's run and hey's, in seconds each"
    )
    parser.add_argument("--rate", type=float, default=GOAL_RPS,
                        help="single checks per second for the paced run, from hey when it is "
                        "installed (0: none)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a small smoke run (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.works, args.requests, args.repeats = 500, 300, 2
        args.concurrency, args.max_seconds, args.seconds = 4, 20, 2
        args.rate = min(args.rate, 100)
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"limiter {args.limiter}; {args.concurrency} single checks in flight; "
        f"{args.workers} server process(es); client {args.client}"
    )
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as folder:
        got, bad = measure(str(Path(folder) / "registry.sqlite"), "sqlite", args)
        rows, failed = rows + got, failed + bad
    if args.postgres:
        with postgres_database(args.postgres) as url:
            got, bad = measure(url, "postgresql", args)
        rows, failed = rows + got, failed + bad
    header = ["backend", "measure", "value", "goal", "met"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
