"""The registry's HTTP API: contributors manage their own consent, admins administer, and
training pipelines ask in bulk which works they may use.

Who may call what is decided in one place per route (``allow(...)``), by one rule: a token
without the route's scope gets 403, and a contributor asking about any account but its own
gets 404, exactly as if the account did not exist. No token, or an unknown one, gets 401.

Every answer of the API is JSON (the contributor page, ``web.py``, answers browsers with HTML).
A problem the caller can fix is ``{"problem": ..., "fix": ...}`` with
a 4xx status; anything unexpected is logged here and answered with a bare 500, never a
traceback. ``create_app`` builds one app per registry; tests, the command line and any
further pages extend that one factory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datalever import __version__
from datalever.errors import DataleverError
from datalever.registry.purposes import PURPOSES
from datalever.registry.registry import (
    IDENTITY_STATES,
    MAX_CHECK_WORKS,
    POLICIES,
    SCOPES,
    Registry,
    RegistryStorageError,
    TokenInfo,
)
from datalever.registry.works import MAX_LENGTH as MAX_WORK_LENGTH
from datalever.registry.works import parse_work

log = logging.getLogger("datalever.registry.api")

MAX_WORKS = MAX_CHECK_WORKS
"""The most works one bulk check may ask about; clients split longer lists."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest request body read: 100,000 works of 600 characters fit, a runaway upload
does not."""
ADMIN_TOKEN_MIN_LENGTH = 32
BOOTSTRAP_ADMIN = TokenInfo(token_id=0, scope="admin", account_id=None)

DESCRIPTION = """Consent records for training data. Contributors state, per work or for
their whole account, whether each purpose is allowed or reserved; pipelines ask in bulk
which works a dataset may use, and get each answer's rule and registry snapshot.

Send `Authorization: Bearer <token>`. A token's scope decides the routes it may call (403
otherwise); a contributor token reaches only its own account (404 for any other). Problems
are answered as `{"problem": ..., "fix": ...}`."""

Purpose = Literal[PURPOSES]
Value = Literal["allowed", "reserved"]
WorkId = Annotated[str, Field(min_length=1, max_length=MAX_WORK_LENGTH)]
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="An id the registry gave.")]
"""Ids beyond 64 bits name nothing the database could hold: refused before any lookup."""


# --- errors ------------------------------------------------------------------------------


class ApiError(Exception):
    """A refusal with a status, answered as ``{"problem", "fix"}``."""

    def __init__(self, status: int, problem: str, fix: str | None = None, **headers: str):
        self.status, self.problem, self.fix, self.headers = status, problem, fix, headers


def _problem(status: int, problem: str, fix: str | None, headers: dict | None = None):
    return JSONResponse({"problem": problem, "fix": fix}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def _api_error(_request: Request, e: ApiError) -> JSONResponse:
        return _problem(e.status, e.problem, e.fix, e.headers or None)

    @app.exception_handler(RegistryStorageError)
    def _storage(_request: Request, e: RegistryStorageError) -> JSONResponse:
        # The database's own words may name hosts and files: they go to the log only.
        log.error("registry storage failed: %s", e, exc_info=e)
        return _problem(
            503, "The registry's database failed; nothing was changed.", "try again later."
        )

    @app.exception_handler(DataleverError)
    def _datalever(_request: Request, e: DataleverError) -> JSONResponse:
        return _problem(422, e.problem, e.fix)

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, e: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed back: it may be 100,000 works long.
        errors = [
            {"where": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg")}
            for err in e.errors()[:20]
        ]
        first = errors[0] if errors else {"where": "request", "message": "invalid"}
        fix = "send the fields the API schema at /openapi.json describes."
        if any(
            err.get("type") == "too_long" and err["loc"][-1:] == ("works",) for err in e.errors()
        ):
            fix = f"split the list into calls of at most {MAX_WORKS} works (RegistryClient does)."
        return JSONResponse(
            {
                "problem": f"Invalid request: {first['where']}: {first['message']}.",
                "fix": fix,
                "errors": errors,
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400 and e.detail == "There was an error parsing the body":
            return _problem(
                422, "Invalid request: the body is not UTF-8 JSON.", "send the body as JSON."
            )
        headers = dict(e.headers or {})
        if e.status_code == 405:  # every method the path answers, not one route's
            methods = {
                m
                for route in request.app.routes
                if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
                for m in route.methods
            }
            headers["Allow"] = ", ".join(sorted(methods))
        fixes = {404: "check the path against /openapi.json.", 405: "check the method."}
        return _problem(e.status_code, str(e.detail), fixes.get(e.status_code), headers or None)

    @app.exception_handler(Exception)
    def _unexpected(request: Request, e: Exception) -> JSONResponse:
        log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=e)
        return _problem(500, "The registry failed unexpectedly.", "try again later.")


# --- who is calling ----------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer <token>")


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    """The token's grant, or 401. The bootstrap admin token is compared in constant time."""
    if credentials is None:
        raise ApiError(
            401,
            "No API token.",
            "send Authorization: Bearer <token>.",
            **{"WWW-Authenticate": "Bearer"},
        )
    token = credentials.credentials
    admin_token: str | None = request.app.state.admin_token
    if admin_token is not None and hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), admin_token.encode()
    ):
        return BOOTSTRAP_ADMIN
    info = request.app.state.registry.verify_token(token)
    if info is None:
        raise ApiError(
            401,
            "Unknown or revoked API token.",
            "ask an admin for a token.",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return info


def allow(*scopes: str) -> Callable[..., TokenInfo]:
    """A dependency admitting only tokens of ``scopes`` (403 for any other valid token)."""

    async def check(who: Annotated[TokenInfo, Depends(_caller)]) -> TokenInfo:
        # async: it does no I/O, and a plain function would cost a hop to a worker thread
        if who.scope not in scopes:
            raise ApiError(
                403,
                f"A {who.scope} token may not call this.",
                f"use a token of scope {' or '.join(scopes)}.",
            )
        return who

    return check


def _own_account(request: Request, who: TokenInfo, account_id: int) -> Registry:
    """The registry, once ``account_id`` is the caller's (or the caller is an admin and the
    account exists). Anything else is 404, so no one learns which accounts exist."""
    registry: Registry = request.app.state.registry
    if who.scope == "contributor" and who.account_id == account_id:
        return registry
    if who.scope == "admin" and registry.account(account_id) is not None:
        return registry
    raise ApiError(404, f"No account {account_id}.", "check the account id (GET /v1/me).")


# --- models ------------------------------------------------------------------------------


class Strict(BaseModel):
    """Requests: no unknown fields, no coercion ("1" is not 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    problem: str
    fix: str | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    max_works: int


class Me(BaseModel):
    scope: Literal[SCOPES]
    account_id: int | None


class Identity(BaseModel):
    id: int
    kind: str
    value: str
    method: str | None
    state: Literal[IDENTITY_STATES]


class OwnedWork(BaseModel):
    id: int
    work: str


class Preference(BaseModel):
    work: str | None = Field(description="None: the statement covers the whole account.")
    purpose: Purpose
    value: Value
    event_id: int
    at: str


class Account(BaseModel):
    id: int
    name: str
    identities: list[Identity]
    works: list[OwnedWork]
    preferences: list[Preference]


class Event(BaseModel):
    id: int
    at: str
    kind: str
    work_id: int | None
    dataset_id: int | None
    purpose: str | None
    value: str | None
    detail: dict[str, Any] | None


class NewAccount(Strict):
    name: str = Field(min_length=1, max_length=200)


class AccountCreated(BaseModel):
    account_id: int


class NewIdentity(Strict):
    kind: str = Field(min_length=1, max_length=20, examples=["github", "domain", "email"])
    value: str = Field(min_length=1, max_length=500)


class IdentityAdded(BaseModel):
    identity_id: int


class NewWork(Strict):
    work: WorkId


class WorkRegistered(BaseModel):
    work_id: int
    work: str = Field(description="The canonical work id the registry stores and answers with.")


class NewPreference(Strict):
    purpose: Purpose
    value: Value
    work: WorkId | None = Field(None, description="Leave out to cover all the account's works.")


class Verification(Strict):
    method: str = Field(min_length=1, max_length=40, examples=["dns-txt", "well-known"])
    state: Literal[IDENTITY_STATES]


class DatasetPolicy(Strict):
    dataset: str = Field(min_length=1, max_length=200)
    policy: Literal[POLICIES]


class NewToken(Strict):
    scope: Literal[SCOPES]
    account_id: int | None = Field(None, description="Required for a contributor token.")


class TokenIssued(BaseModel):
    token: str = Field(description="Shown once: only its hash is stored.")
    token_id: int
    scope: Literal[SCOPES]
    account_id: int | None


class Recorded(BaseModel):
    event_id: int


class ChallengeOut(BaseModel):
    """What the owner of a domain must publish: either proof verifies it."""

    domain: str
    txt_name: str
    txt_value: str
    well_known_url: str
    well_known_body: str


class VerifyRequest(Strict):
    method: Literal["dns-txt", "well-known"] = "dns-txt"


class Verified(BaseModel):
    identity_id: int
    state: Literal["verified", "failed"]
    method: str
    detail: str
    event_id: int


@dataclass(frozen=True)
class DomainProofs:
    """How the registry checks domain proofs: the secret challenges derive from (from the
    environment or a file, never code) and, for tests, a resolver and a base URL pointing
    at local servers."""

    secret: bytes
    resolver: Any = None
    timeout: float = 5.0
    base_url: str | None = None


class CheckRequest(Strict):
    dataset: str = Field(min_length=1, max_length=200)
    purpose: Purpose
    as_of: Annotated[AwareDatetime | None, Field(strict=False)] = Field(
        None, description="Ask how consent stood then (ISO 8601 with a time zone); default now."
    )
    works: list[WorkId] = Field(min_length=1, max_length=MAX_WORKS)


class CheckedWork(BaseModel):
    work: str
    outcome: Value
    rule: str = Field(description="Why: the dataset policy and the statement that decided.")
    snapshot: int = Field(description="The last registry event the answer reflects.")
    event_id: int | None = Field(description="The statement that decided; None: the policy.")


class CheckResponse(BaseModel):
    dataset: str
    purpose: Purpose
    snapshot: int
    decisions: list[CheckedWork]


# --- middleware --------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """Each token (or, without one, each client address) may make ``burst`` requests at
    once, refilled at ``per_second``."""

    per_second: float = 20.0
    burst: int = 60


class _RateLimiter:
    """Token buckets, one per caller, behind one lock (the app may serve many threads)."""

    MAX_CALLERS = 100_000

    def __init__(self, app: ASGIApp, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.app, self.limit, self.clock = app, limit, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # caller: (tokens, last refill)
        self.lock = threading.Lock()

    def _take(self, caller: str) -> float:
        """0 if a request may go ahead now, else the seconds until it may."""
        now = self.clock()
        with self.lock:
            tokens, last = self.buckets.get(caller, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.per_second)
            if tokens >= 1:
                if len(self.buckets) >= self.MAX_CALLERS and caller not in self.buckets:
                    self.buckets.clear()  # forgetting every caller only ever grants more
                self.buckets[caller] = (tokens - 1, now)
                return 0.0
            self.buckets[caller] = (tokens, now)
            return (1 - tokens) / self.limit.per_second

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        wait = self._take(_caller_key(scope))
        if wait > 0:
            response = _problem(
                429,
                "Too many requests for this token.",
                f"wait {math.ceil(wait)} s; pipelines should send fewer, larger bulk checks.",
                {"Retry-After": str(math.ceil(wait))},
            )
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _caller_key(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return "token:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class _BodyLimit:
    """Reads at most ``limit`` bytes of a request body; a longer one is answered 413 before
    any of it is parsed (a missing or false Content-Length changes nothing)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                response = _problem(
                    413,
                    f"The request body is over {self.limit} bytes.",
                    "send fewer works per call (RegistryClient(chunk=...)).",
                )
                return await response(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# --- the app -----------------------------------------------------------------------------


def create_app(
    registry: Registry,
    *,
    admin_token: str | None = None,
    rate_limit: RateLimit | None = RateLimit(),
    max_works: int = MAX_WORKS,
    max_body_bytes: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.monotonic,
    domain_proofs: DomainProofs | None = None,
) -> FastAPI:
    """The API over ``registry``. ``admin_token`` is a bootstrap admin secret (read it from
    the environment or a file, never from code); ``rate_limit=None`` turns limiting off."""
    if admin_token is not None and len(admin_token.strip()) < ADMIN_TOKEN_MIN_LENGTH:
        raise DataleverError(
            f"The admin token is shorter than {ADMIN_TOKEN_MIN_LENGTH} characters.",
            'use a long random one: python -c "import secrets; print(secrets.token_urlsafe())"',
        )
    if not 1 <= max_works <= MAX_WORKS:
        raise DataleverError(f"max_works must be 1 to {MAX_WORKS}.", "pass a smaller number.")
    app = FastAPI(
        title="datalever consent registry",
        version=__version__,
        description=DESCRIPTION,
        responses={
            code: {"model": Problem, "description": text}
            for code, text in [
                (401, "No token or an unknown one"),
                (403, "The token's scope may not call this"),
                (404, "No such account (or not the caller's)"),
                (413, "Too many works, or too large a body"),
                (422, "Invalid input: the problem and its fix"),
                (429, "Too many requests"),
            ]
        },
    )
    app.state.registry = registry
    app.state.admin_token = admin_token.strip() if admin_token is not None else None
    app.state.max_works = max_works
    app.state.domain_proofs = domain_proofs or _proofs_from_environment()
    _install_error_handlers(app)
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    if rate_limit is not None:
        app.add_middleware(_RateLimiter, limit=rate_limit, clock=clock)
    _add_routes(app)
    from datalever.registry.web import add_web_routes  # the contributor page; imports this

    add_web_routes(app, clock=clock)
    return app


def _proofs_from_environment() -> DomainProofs | None:
    """Domain proofs checked with the registry secret the environment gives (the value, or
    a file holding it), if it gives one."""
    import os

    from datalever.registry.verify import SECRET_ENV, load_secret

    path = os.environ.get(f"{SECRET_ENV}_FILE")
    if path:
        return DomainProofs(load_secret(path))
    return DomainProofs(load_secret()) if os.environ.get(SECRET_ENV) else None


def _own_identity(request: Request, who: TokenInfo, identity_id: int) -> dict:
    """The identity, once it belongs to the caller's account (or the caller is an admin);
    404 otherwise, as for an identity that does not exist."""
    identity = request.app.state.registry.identity(identity_id)
    theirs = identity is not None and identity["account_id"] == who.account_id
    if identity is None or (who.scope == "contributor" and not theirs):
        raise ApiError(404, f"No identity {identity_id}.", "check the id (GET /v1/accounts/ID).")
    return identity


def _proofs(request: Request) -> DomainProofs:
    proofs = request.app.state.domain_proofs
    if proofs is None:
        raise ApiError(
            503,
            "Domain verification is not configured on this registry.",
            "start it with DATALEVER_REGISTRY_SECRET set (a long random value).",
        )
    return proofs


def app_from_environment() -> FastAPI:
    """The app as the environment describes it, for server processes started by name (several
    workers): the registry ``DATALEVER_REGISTRY``, the bootstrap admin token
    ``DATALEVER_REGISTRY_ADMIN_TOKEN`` and, with ``DATALEVER_REGISTRY_RATE_LIMIT=off``, no rate
    limit (for load measurements behind a limiter of one's own)."""
    import os

    limit = os.environ.get("DATALEVER_REGISTRY_RATE_LIMIT", "on")
    if limit not in ("on", "off"):
        raise DataleverError(
            f"DATALEVER_REGISTRY_RATE_LIMIT is {limit[:20]!r}.", "set it to on or off."
        )
    return create_app(
        Registry(os.environ.get("DATALEVER_REGISTRY") or None),
        admin_token=os.environ.get("DATALEVER_REGISTRY_ADMIN_TOKEN") or None,
        rate_limit=RateLimit() if limit == "on" else None,
    )


# Who may call a route, by scope; an account's own routes then also check the account.
OwnerOrAdmin = Annotated[TokenInfo, Depends(allow("contributor", "admin"))]
Owner = Annotated[TokenInfo, Depends(allow("contributor"))]
Admin = Annotated[TokenInfo, Depends(allow("admin"))]
PipelineOrAdmin = Annotated[TokenInfo, Depends(allow("pipeline", "admin"))]
AnyToken = Annotated[TokenInfo, Depends(allow(*SCOPES))]


def _add_routes(app: FastAPI) -> None:
    @app.get("/v1/health", tags=["service"])
    def health() -> Health:
        """Liveness, and the bulk-check cap clients split their lists by. No token needed."""
        return Health(status="ok", version=__version__, max_works=app.state.max_works)

    @app.get("/v1/me", tags=["service"])
    def me(who: AnyToken) -> Me:
        """What the presented token grants."""
        return Me(scope=who.scope, account_id=who.account_id)

    # --- contributor self-service (an admin may read, not state consent for anyone) ------

    @app.get("/v1/accounts/{account_id}", tags=["contributor"])
    def read_account(account_id: RowId, request: Request, who: OwnerOrAdmin) -> Account:
        """The account's identities, works and current statements."""
        registry = _own_account(request, who, account_id)
        return Account.model_validate(registry.account(account_id))

    @app.get("/v1/accounts/{account_id}/events", tags=["contributor"])
    def read_history(account_id: RowId, request: Request, who: OwnerOrAdmin) -> list[Event]:
        """Every change to the account, oldest first."""
        registry = _own_account(request, who, account_id)
        return [
            Event(**{k: e[k] for k in Event.model_fields if k != "detail"}, detail=_detail(e))
            for e in registry.events(account_id)
        ]

    @app.post("/v1/accounts/{account_id}/identities", status_code=201, tags=["contributor"])
    def add_identity(
        account_id: RowId, body: NewIdentity, request: Request, who: Owner
    ) -> IdentityAdded:
        """Claim an identity (unverified until an admin records its verification)."""
        registry = _own_account(request, who, account_id)
        return IdentityAdded(identity_id=registry.add_identity(account_id, body.kind, body.value))

    @app.post("/v1/accounts/{account_id}/works", status_code=201, tags=["contributor"])
    def register_work(
        account_id: RowId, body: NewWork, request: Request, who: Owner
    ) -> WorkRegistered:
        """Claim a work for the account."""
        registry = _own_account(request, who, account_id)
        work_id = registry.register_work(account_id, body.work)
        return WorkRegistered(work_id=work_id, work=parse_work(body.work)[1])

    @app.post("/v1/accounts/{account_id}/preferences", status_code=201, tags=["contributor"])
    def set_preference(
        account_id: RowId, body: NewPreference, request: Request, who: Owner
    ) -> Recorded:
        """Allow or reserve a purpose for one work or (without ``work``) for all of them."""
        registry = _own_account(request, who, account_id)
        return Recorded(
            event_id=registry.set_preference(account_id, body.purpose, body.value, body.work)
        )

    # --- administration ------------------------------------------------------------------

    @app.post("/v1/accounts", status_code=201, tags=["admin"])
    def create_account(body: NewAccount, request: Request, who: Admin) -> AccountCreated:
        return AccountCreated(account_id=request.app.state.registry.create_account(body.name))

    @app.post("/v1/identities/{identity_id}/verification", tags=["admin"])
    def verify_identity(
        identity_id: RowId, body: Verification, request: Request, who: Admin
    ) -> Recorded:
        """Record how an identity was checked and whether it passed."""
        registry: Registry = request.app.state.registry
        return Recorded(event_id=registry.set_identity_state(identity_id, body.method, body.state))

    @app.get("/v1/identities/{identity_id}/challenge", tags=["contributor"])
    def domain_challenge(identity_id: RowId, request: Request, who: OwnerOrAdmin) -> ChallengeOut:
        """What to publish to prove a domain identity: a DNS TXT record or a well-known file."""
        from datalever.registry.verify import challenge_for

        _own_identity(request, who, identity_id)
        found = challenge_for(
            request.app.state.registry, identity_id, secret=_proofs(request).secret
        )
        return ChallengeOut(
            domain=found.domain,
            txt_name=found.txt_name,
            txt_value=found.txt_value,
            well_known_url=found.well_known_url,
            well_known_body=found.value,
        )

    @app.post("/v1/identities/{identity_id}/verify", tags=["contributor"])
    def verify_domain_identity(
        identity_id: RowId, body: VerifyRequest, request: Request, who: OwnerOrAdmin
    ) -> Verified:
        """Look for the proof now and record the outcome (a failure is an answer too)."""
        from datalever.registry.verify import verify_domain

        _own_identity(request, who, identity_id)
        proofs = _proofs(request)
        result = verify_domain(
            request.app.state.registry,
            identity_id,
            secret=proofs.secret,
            method=body.method,
            resolver=proofs.resolver,
            timeout=proofs.timeout,
            base_url=proofs.base_url,
        )
        return Verified(
            identity_id=identity_id,
            state=result.state,
            method=result.method,
            detail=result.detail,
            event_id=result.event_id,
        )

    @app.post("/v1/dataset-policies", tags=["admin"])
    def set_dataset_policy(body: DatasetPolicy, request: Request, who: Admin) -> Recorded:
        """Declare a dataset opt-in (needs a recorded allow) or opt-out."""
        registry: Registry = request.app.state.registry
        return Recorded(event_id=registry.set_dataset_policy(body.dataset, body.policy))

    @app.post("/v1/tokens", status_code=201, tags=["admin"])
    def issue_token(body: NewToken, request: Request, who: Admin) -> TokenIssued:
        """A new token; the answer is the only time it is shown."""
        registry: Registry = request.app.state.registry
        token = registry.issue_token(body.scope, body.account_id)
        info = registry.verify_token(token)
        assert info is not None
        return TokenIssued(
            token=token, token_id=info.token_id, scope=info.scope, account_id=info.account_id
        )

    # --- pipelines -----------------------------------------------------------------------

    @app.post("/v1/checks", response_model=CheckResponse, tags=["pipeline"])
    def check(body: CheckRequest, request: Request, who: PipelineOrAdmin) -> Response:
        """Allowed or reserved, for each work in order, as consent stood at ``as_of``."""
        cap = request.app.state.max_works
        if len(body.works) > cap:
            raise ApiError(
                413,
                f"{len(body.works)} works in one check; this registry answers at most {cap}.",
                f"split the list into calls of at most {cap} works: RegistryClient(chunk={cap}).",
            )
        return _decisions(request, body.dataset, body.works, body.purpose, body.as_of)

    @app.get("/v1/checks", response_model=CheckResponse, tags=["pipeline"])
    def check_one(
        request: Request,
        who: PipelineOrAdmin,
        dataset: Annotated[str, Query(min_length=1, max_length=200)],
        purpose: Purpose,
        work: Annotated[str, Query(min_length=1, max_length=MAX_WORK_LENGTH)],
        as_of: AwareDatetime | None = None,
    ) -> Response:
        """One work: the same answer as a bulk check of one."""
        return _decisions(request, dataset, [work], purpose, as_of)


def _decisions(
    request: Request, dataset: str, works: list[str], purpose: str, as_of: datetime | None
) -> Response:
    """Bulk answers are serialised directly: validating 100,000 response objects would
    cost more than deciding them."""
    registry: Registry = request.app.state.registry
    decided = registry.decide(dataset, works, purpose, as_of=as_of)
    payload = {
        "dataset": dataset,
        "purpose": purpose,
        "snapshot": decided[0].snapshot if decided else registry.snapshot(as_of),
        "decisions": [
            {
                "work": d.work,
                "outcome": d.outcome,
                "rule": d.rule,
                "snapshot": d.snapshot,
                "event_id": d.event_id,
            }
            for d in decided
        ],
    }
    return Response(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        media_type="application/json",
    )


def _detail(event: dict) -> dict | None:
    return None if event.get("detail") is None else json.loads(event["detail"])
