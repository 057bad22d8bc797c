"""The pipeline's side of the registry: ask which works may be used, and fail closed.

A training pipeline must never use a work because the registry could not be asked. So every
way a check can go wrong (the registry unreachable or slow, an HTTP error, an answer that is
not JSON, is cut short, has the wrong number of decisions or an unknown outcome) answers
*reserved* for every work concerned, and each decision's ``rule`` says what went wrong.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from datalever.errors import DataleverError
from datalever.registry.registry import MAX_CHECK_WORKS as MAX_WORKS
from datalever.registry.registry import Outcome
from datalever.registry.works import parse_work

MAX_ANSWER_BYTES = 512 * MAX_WORKS
"""Beyond this an answer is not a registry's: reading stops and the chunk is reserved."""


@dataclass(frozen=True)
class RemoteDecision:
    """One work's answer. ``snapshot`` is None when the registry gave no usable answer and
    the work was reserved by this client (``rule`` says why)."""

    work: str
    outcome: Outcome
    rule: str
    snapshot: int | None
    event_id: int | None = None

    @property
    def failed_closed(self) -> bool:
        return self.snapshot is None


class _BadAnswer(Exception):
    """The registry answered, but not with a usable answer."""


class RegistryClient:
    """Bulk checks against a registry's HTTP API, split into calls of at most ``chunk``
    works, each bounded by ``timeout`` seconds in all (connecting, waiting and reading)."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 60.0, chunk: int = MAX_WORKS
    ) -> None:
        if not 1 <= chunk <= MAX_WORKS:
            raise DataleverError(f"chunk must be 1 to {MAX_WORKS}.", "pass a smaller chunk.")
        if not 0 < timeout < 10**6:  # also refuses nan and infinity
            raise DataleverError("timeout must be positive seconds.", "pass e.g. timeout=60.")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.chunk = chunk
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(
        self,
        dataset: str,
        works: Sequence[str],
        purpose: str,
        as_of: datetime | str | None = None,
    ) -> list[RemoteDecision]:
        """One decision per work, in order. Never raises for a registry failure: those
        works come back reserved, with the reason in ``rule``."""
        if isinstance(works, str):
            raise DataleverError("check takes a list of work ids, not one string.", "wrap it.")
        when = as_of.isoformat() if isinstance(as_of, datetime) else as_of
        answers: list[RemoteDecision | None] = [None] * len(works)
        valid: list[int] = []
        canonical: dict[int, str] = {}  # what the registry will answer for each work
        for i, work in enumerate(works):
            try:
                canonical[i] = parse_work(work)[1]
                valid.append(i)
            except DataleverError as e:  # reserved alone, so it cannot sink its chunk
                answers[i] = _reserved(work, f"malformed work id: {e.problem}")
        down: str | None = None  # once the registry cannot be reached, it is not asked again
        for start in range(0, len(valid), self.chunk):
            positions = valid[start : start + self.chunk]
            chunk = [works[i] for i in positions]
            expected = [canonical[i] for i in positions]
            if down is None:
                decided, down = self._check_chunk(dataset, chunk, expected, purpose, when)
            else:
                decided = _all_reserved(chunk, f"{down} (on an earlier call of this check)")
            for i, decision in zip(positions, decided, strict=True):
                answers[i] = decision
        return answers  # type: ignore[return-value]  # every position is filled above

    def _check_chunk(
        self, dataset: str, works: list[str], expected: list[str], purpose: str, as_of: str | None
    ) -> tuple[list[RemoteDecision], str | None]:
        """The chunk's decisions, and why the registry could not be reached, if it could not
        (an answer, even a refusal, says it can)."""
        body = {"dataset": dataset, "purpose": purpose, "works": works}
        if as_of is not None:
            body["as_of"] = as_of
        down = None
        try:
            status, raw = self._post("/v1/checks", body)
        except httpx.TimeoutException as e:
            down = f"registry timed out: {_name(e)}"
        except httpx.ConnectError as e:
            down = f"registry unreachable: {_name(e)}"
        except (httpx.HTTPError, OSError) as e:
            down = f"registry connection failed: {_name(e)}"
        except _BadAnswer as e:
            return _all_reserved(works, f"registry answer unusable: {e}"), None
        if down is not None:
            return _all_reserved(works, down), down
        if status != 200:
            why = f"registry answered HTTP {status}: {_problem_of(raw)}"
            return _all_reserved(works, why), None
        try:
            return _parse(raw, works, expected), None
        except _BadAnswer as e:
            return _all_reserved(works, f"registry answer unusable: {e}"), None

    def _post(self, path: str, body: dict) -> tuple[int, bytes]:
        """(status, body), read in pieces so neither a slow drip nor a flood of bytes can
        hold the pipeline past ``timeout`` or fill its memory."""
        deadline = time.monotonic() + self.timeout
        with self._http.stream("POST", path, json=body) as response:
            parts: list[bytes] = []
            size = 0
            for part in response.iter_bytes():
                size += len(part)
                if size > MAX_ANSWER_BYTES:
                    raise _BadAnswer(f"over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"no full answer within {self.timeout} s")
                parts.append(part)
            return response.status_code, b"".join(parts)


def _parse(raw: bytes, works: list[str], expected: list[str]) -> list[RemoteDecision]:
    """The decisions of a 200 answer, each checked against the work it should answer (its
    canonical id, ``expected``)."""
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _BadAnswer(f"not JSON ({_name(e)})") from None
    decisions = answer.get("decisions") if isinstance(answer, dict) else None
    if not isinstance(decisions, list):
        raise _BadAnswer("no list of decisions")
    if len(decisions) != len(works):
        raise _BadAnswer(f"{len(decisions)} decisions for {len(works)} works")
    out = []
    for work, canonical, d in zip(works, expected, decisions, strict=True):
        if not isinstance(d, dict):
            raise _BadAnswer("a decision is not an object")
        outcome, rule, snapshot = d.get("outcome"), d.get("rule"), d.get("snapshot")
        event_id = d.get("event_id")
        if outcome not in ("allowed", "reserved"):
            raise _BadAnswer(f"unknown outcome {str(outcome)[:40]!r}")
        if not isinstance(rule, str) or not rule:
            raise _BadAnswer("a decision has no rule")
        if not _is_int(snapshot) or not (event_id is None or _is_int(event_id)):
            raise _BadAnswer("a decision has no snapshot id")
        if d.get("work") != canonical:
            raise _BadAnswer(f"decisions out of order at {work[:120]!r}")
        out.append(RemoteDecision(work, outcome, rule, snapshot, event_id))
    return out


def _reserved(work: str, why: str) -> RemoteDecision:
    return RemoteDecision(work, "reserved", f"reserved by the client: {why}", None)


def _all_reserved(works: list[str], why: str) -> list[RemoteDecision]:
    return [_reserved(work, why) for work in works]


def _problem_of(raw: bytes) -> str:
    try:
        answer = json.loads(raw)
        return f"{answer['problem']} Fix: {answer['fix']}"[:500]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace") or "(empty body)"


def _name(e: BaseException) -> str:
    return f"{type(e).__name__} {str(e)[:200]}".strip()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
