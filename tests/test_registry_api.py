"""The registry's HTTP API, run in-process by FastAPI's TestClient: the authorisation matrix
over every route, no request crossing accounts, clear 4xx answers for bad input, no internals
in a 500, bulk checks and their caps, rate limiting, the bootstrap admin secret and the
command line. On SQLite, and on PostgreSQL too when DATALEVER_TEST_POSTGRES names a server."""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():  # Starlette suggests another HTTP library for its test client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from typer.testing import CliRunner

from datalever.errors import DataleverError
from datalever.registry import Registry
from datalever.registry.api import MAX_WORKS, DomainProofs, RateLimit, create_app
from datalever.registry.cli import ADMIN_TOKEN_ENV, read_admin_token, registry_app
from datalever.registry.registry import RegistryStorageError

ADMIN_SECRET = "bootstrap-" + "s" * 40
A_WORK = "https://ann.example/a.png"
B_WORK = "https://bob.example/b.png"


@pytest.fixture
def url(registry_url: str) -> str:
    return registry_url


@pytest.fixture
def reg(url):
    registry = Registry(url)
    yield registry
    registry.close()


def local_proofs() -> DomainProofs:
    """Domain proofs checked against loopback ports where nothing listens: a DNS lookup
    times out at once and the well-known file is refused, so a verification fails fast."""
    import socket

    import dns.resolver

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    return DomainProofs(b"a test secret, long enough", resolver, 0.3, f"http://127.0.0.1:{port}")


class World:
    """Two contributors (ann owns the resources under test, bob is the other account), a
    pipeline and an admin, each with a token, and an HTTP client over the app."""

    def __init__(self, reg: Registry, **app_options) -> None:
        self.reg = reg
        self.serve(**app_options)
        reg.set_dataset_policy("crawl", "opt-out")
        self.ann, self.bob = reg.create_account("ann"), reg.create_account("bob")
        reg.register_work(self.ann, A_WORK)
        reg.register_work(self.bob, B_WORK)
        self.ann_identity = reg.add_identity(self.ann, "domain", "ann.example")
        self.reg.set_preference(self.ann, "train-ai", "reserved", work=A_WORK)
        self.tokens = {
            "none": None,
            "own": reg.issue_token("contributor", self.ann),
            "other": reg.issue_token("contributor", self.bob),
            "pipeline": reg.issue_token("pipeline"),
            "admin": reg.issue_token("admin"),
        }

    def serve(self, **app_options) -> None:
        """A fresh app (and rate limiter) over the same registry. Domain proofs are looked
        up on a loopback port nobody answers, so no test reaches the internet."""
        app_options.setdefault("domain_proofs", local_proofs())
        self.app = create_app(self.reg, admin_token=ADMIN_SECRET, **app_options)
        self.http = TestClient(self.app, raise_server_exceptions=False)

    def call(self, method: str, path: str, who: str, **kwargs):
        token = self.tokens[who]
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.http.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def world(reg) -> World:
    return World(reg, rate_limit=None)


# --- the authorisation matrix -----------------------------------------------------------------

WHO = ("none", "own", "other", "pipeline", "admin")
"""No token; ann's token on ann's account; bob's token on ann's account; pipeline; admin."""

ALLOWED = {
    # (method, path):                                         none own other pipeline admin
    ("GET", "/openapi.json"): "ok ok ok ok ok",
    ("GET", "/docs"): "ok ok ok ok ok",
    ("GET", "/docs/oauth2-redirect"): "ok ok ok ok ok",
    ("GET", "/redoc"): "ok ok ok ok ok",
    ("GET", "/v1/health"): "ok ok ok ok ok",
    ("GET", "/v1/me"): "401 ok ok ok ok",
    ("GET", "/v1/accounts/{account_id}"): "401 ok 404 403 ok",
    ("GET", "/v1/accounts/{account_id}/events"): "401 ok 404 403 ok",
    ("POST", "/v1/accounts/{account_id}/identities"): "401 ok 404 403 403",
    ("POST", "/v1/accounts/{account_id}/works"): "401 ok 404 403 403",
    ("POST", "/v1/accounts/{account_id}/preferences"): "401 ok 404 403 403",
    ("POST", "/v1/accounts"): "401 403 403 403 ok",
    ("POST", "/v1/identities/{identity_id}/verification"): "401 403 403 403 ok",
    ("GET", "/v1/identities/{identity_id}/challenge"): "401 ok 404 403 ok",
    ("POST", "/v1/identities/{identity_id}/verify"): "401 ok 404 403 ok",
    ("POST", "/v1/dataset-policies"): "401 403 403 403 ok",
    ("POST", "/v1/tokens"): "401 403 403 403 ok",
    ("POST", "/v1/checks"): "401 403 403 ok ok",
    ("GET", "/v1/checks"): "401 403 403 ok ok",
    # The contributor page: a bearer token opens no web session, and a form without the
    # session's CSRF token is refused (the page's own tests sign in: test_registry_web.py).
    ("GET", "/"): "ok ok ok ok ok",
    ("GET", "/web/"): "ok ok ok ok ok",
    ("GET", "/web/account"): "ok ok ok ok ok",  # a redirect to the sign-in form
    ("POST", "/web/sign-in"): "403 403 403 403 403",
    ("POST", "/web/works"): "403 403 403 403 403",
    ("POST", "/web/preferences"): "403 403 403 403 403",
    ("POST", "/web/sign-out"): "403 403 403 403 403",
}
"""Every route, and who may call it: "ok" is a 2xx answer, a number the refusal's status."""


def valid_request(world: World, method: str, path: str, who: str) -> dict:
    """A request each route would accept from an allowed caller (unique per caller, so a
    repeated claim is never what refuses it)."""
    tag = f"{who}-{uuid.uuid4().hex[:6]}"
    bodies = {
        "/v1/accounts/{account_id}/identities": {"kind": "domain", "value": f"{tag}.example"},
        "/v1/accounts/{account_id}/works": {"work": f"https://ann.example/{tag}"},
        "/v1/accounts/{account_id}/preferences": {"purpose": "search", "value": "allowed"},
        "/v1/accounts": {"name": f"carol {tag}"},
        "/v1/identities/{identity_id}/verification": {"method": "dns-txt", "state": "verified"},
        "/v1/identities/{identity_id}/verify": {"method": "dns-txt"},
        "/v1/dataset-policies": {"dataset": f"set-{tag}", "policy": "opt-in"},
        "/v1/tokens": {"scope": "pipeline"},
        "/v1/checks": {"dataset": "crawl", "purpose": "train-ai", "works": [A_WORK, B_WORK]},
        "/web/sign-in": {"token": world.tokens[who] or ""},
        "/web/works": {"work": f"https://ann.example/{tag}"},
        "/web/preferences": {"purpose": "search", "value": "allowed"},
        "/web/sign-out": {},
    }
    request: dict = {
        "url": path.format(account_id=world.ann, identity_id=world.ann_identity),
    }
    if method == "POST":
        request["json"] = bodies[path]
    elif path == "/v1/checks":
        request["params"] = {"dataset": "crawl", "purpose": "train-ai", "work": A_WORK}
    return request


def app_routes(app) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }


def test_every_route_has_a_row_in_the_authorisation_table(world):
    routes = app_routes(world.app)
    assert routes - ALLOWED.keys() == set(), "add these routes to ALLOWED"
    assert ALLOWED.keys() - routes == set(), "these rows name no route"
    assert all(len(row.split()) == len(WHO) for row in ALLOWED.values())


@pytest.mark.parametrize("route", sorted(ALLOWED), ids=lambda r: f"{r[0]} {r[1]}")
def test_authorisation_matrix(world, route):
    method, path = route
    for who, expected in zip(WHO, ALLOWED[route].split(), strict=True):
        request = valid_request(world, method, path, who)
        before = world.reg.event_count()
        got = world.http.request(
            method,
            headers={} if who == "none" else {"Authorization": f"Bearer {world.tokens[who]}"},
            **request,
        )
        if expected == "ok":
            assert 200 <= got.status_code < 300, (who, got.status_code, got.text[:300])
            continue
        assert got.status_code == int(expected), (who, got.status_code, got.text[:300])
        assert set(got.json()) == {"problem", "fix"} and got.json()["fix"]
        assert world.reg.event_count() == before, f"a refused {who} request changed the registry"


def test_a_contributor_never_reads_or_changes_another_account(world):
    """Bob's token against every route that names ann's account or identity, and with bodies
    that point at ann's works: nothing of ann's comes back, nothing of ann's changes."""
    reg = world.reg
    ann_before, ann_events = reg.account(world.ann), reg.events(world.ann)
    ann_words = ("ann-draws", "ann.example", '"name":"ann"')
    attempts = [
        valid_request(world, method, path, "other") | {"method": method}
        for method, path in ALLOWED
        if "{" in path
    ]
    bob = f"/v1/accounts/{world.bob}"
    attempts += [
        {"method": "POST", "url": f"{bob}/works", "json": {"work": A_WORK}},
        {"method": "POST", "url": f"{bob}/works", "json": {"work": "HTTPS://ANN.EXAMPLE/a.png"}},
        {
            "method": "POST",
            "url": f"{bob}/preferences",
            "json": {"purpose": "train-ai", "value": "allowed", "work": A_WORK},
        },
        {
            "method": "POST",
            "url": f"{bob}/preferences",
            "json": {"purpose": "train-ai", "value": "allowed", "account_id": world.ann},
        },
        {"method": "GET", "url": f"/v1/accounts/{world.ann}/../{world.ann}"},
        {"method": "GET", "url": f"/v1/accounts/{world.ann + 1000}"},
        {"method": "GET", "url": "/v1/accounts/-1/events"},
    ]
    for attempt in attempts:
        sent = json.dumps(attempt)
        method = attempt.pop("method")
        got = world.call(method, attempt.pop("url"), "other", **attempt)
        assert got.status_code in (403, 404, 422), (sent, got.status_code, got.text[:300])
        # bob's own input may be echoed (a claimed work is claimed, whoever asks); no more
        leaked = [w for w in ann_words if w in got.text and w.lower() not in sent.lower()]
        assert not leaked, got.text[:300]
    # an unknown account and another's account look alike
    other = world.call("GET", f"/v1/accounts/{world.ann}", "other").json()
    missing = world.call("GET", "/v1/accounts/999999", "other").json()
    assert other["fix"] == missing["fix"]
    assert reg.account(world.ann) == ann_before and reg.events(world.ann) == ann_events
    with reg.engine.connect() as conn:
        owners = conn.execute(sa.text("SELECT account_id FROM works")).scalars().all()
    assert sorted(owners) == sorted([world.ann, world.bob])


def test_a_contributor_writes_only_to_its_own_account(world):
    before = world.reg.snapshot()
    for path in ("identities", "works", "preferences"):
        request = valid_request(world, "POST", f"/v1/accounts/{{account_id}}/{path}", "own")
        assert world.call("POST", request["url"], "own", json=request["json"]).status_code == 201
    new = [e for e in world.reg.events() if e["id"] > before]
    assert len(new) == 3 and {e["account_id"] for e in new} == {world.ann}


# --- the contributor's and admin's flow -------------------------------------------------------


def test_admin_creates_an_account_and_the_contributor_manages_it(world):
    account_id = world.call("POST", "/v1/accounts", "admin", json={"name": "dee"}).json()[
        "account_id"
    ]
    issued = world.call(
        "POST", "/v1/tokens", "admin", json={"scope": "contributor", "account_id": account_id}
    )
    assert issued.status_code == 201 and issued.json()["account_id"] == account_id
    world.tokens["dee"] = issued.json()["token"]
    me = world.call("GET", "/v1/me", "dee").json()
    assert me == {"scope": "contributor", "account_id": account_id}
    base = f"/v1/accounts/{account_id}"
    work = world.call("POST", f"{base}/works", "dee", json={"work": "HTTPS://Dee.Example/x#y"})
    assert work.json()["work"] == "url:https://dee.example/x"
    identity = world.call(
        "POST", f"{base}/identities", "dee", json={"kind": "domain", "value": "dee.example"}
    ).json()["identity_id"]
    verified = world.call(
        "POST",
        f"/v1/identities/{identity}/verification",
        "admin",
        json={"method": "dns-txt", "state": "verified"},
    )
    assert verified.status_code == 200
    for body in (
        {"purpose": "train-ai", "value": "reserved"},
        {"purpose": "train-ai", "value": "allowed", "work": "https://dee.example/x"},
    ):
        assert world.call("POST", f"{base}/preferences", "dee", json=body).status_code == 201
    account = world.call("GET", base, "dee").json()
    assert account["identities"][0] | {"id": 0} == {
        "id": 0,
        "kind": "domain",
        "value": "dee.example",
        "method": "dns-txt",
        "state": "verified",
    }
    assert [(p["work"], p["value"]) for p in account["preferences"]] == [
        (None, "reserved"),
        ("url:https://dee.example/x", "allowed"),
    ]
    history = world.call("GET", f"{base}/events", "dee").json()
    assert [e["kind"] for e in history] == [
        "account_created",
        "token_issued",
        "work_registered",
        "identity_added",
        "identity_verified",
        "preference_set",
        "preference_set",
    ]
    assert history[2]["detail"] == {"work": "url:https://dee.example/x"}
    assert not any(world.tokens["dee"] in json.dumps(e) for e in history)


def test_account_summary_keeps_the_latest_statement_per_work_and_purpose(reg):
    ann = reg.create_account("ann")
    reg.register_work(ann, A_WORK)
    reg.set_preference(ann, "train-ai", "reserved")
    reg.set_preference(ann, "train-ai", "allowed", work=A_WORK)
    last = reg.set_preference(ann, "train-ai", "allowed")
    summary = reg.account(ann)
    assert summary["works"] == [{"id": 1, "work": "url:https://ann.example/a.png"}]
    assert [(p["work"], p["value"], p["event_id"]) for p in summary["preferences"]] == [
        ("url:https://ann.example/a.png", "allowed", last - 1),
        (None, "allowed", last),
    ]
    assert reg.account(999) is None


def test_bootstrap_admin_token_and_revoked_tokens(world):
    boot = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    assert world.http.get("/v1/me", headers=boot).json() == {"scope": "admin", "account_id": None}
    for bad in ("", ADMIN_SECRET[:-1], ADMIN_SECRET + "x", "Bearer", "x" * 5000):
        got = world.http.get("/v1/me", headers={"Authorization": f"Bearer {bad}"})
        assert got.status_code == 401 and got.headers["www-authenticate"].startswith("Bearer")
    got = world.http.get("/v1/me", headers={"Authorization": f"Basic {ADMIN_SECRET}"})
    assert got.status_code == 401
    info = world.reg.verify_token(world.tokens["pipeline"])
    world.reg.revoke_token(info.token_id)
    assert world.call("GET", "/v1/me", "pipeline").status_code == 401
    no_bootstrap = TestClient(create_app(world.reg, rate_limit=None))
    assert no_bootstrap.get("/v1/me", headers=boot).status_code == 401


def test_admin_secret_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    assert read_admin_token(None) is None
    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN_SECRET)
    assert read_admin_token(None) == ADMIN_SECRET
    secret = tmp_path / "admin-token"
    secret.write_text("from-the-file-" + "f" * 40 + "\n")
    assert read_admin_token(secret) == "from-the-file-" + "f" * 40
    with pytest.raises(DataleverError, match="Cannot read the admin token file"):
        read_admin_token(tmp_path / "missing")


def test_a_short_admin_secret_is_refused(reg):
    with pytest.raises(DataleverError, match="shorter than 32") as e:
        create_app(reg, admin_token="hunter2")
    assert e.value.fix


# --- bulk checks ------------------------------------------------------------------------------


def test_bulk_check_of_10000_works_matches_the_registry(world):
    works = [A_WORK, B_WORK] + [f"https://site.example/{i}" for i in range(10_000)]
    got = world.call(
        "POST",
        "/v1/checks",
        "pipeline",
        json={"dataset": "crawl", "purpose": "train-genai", "works": works},
    )
    assert got.status_code == 200
    answer = got.json()
    expected = world.reg.decide("crawl", works, "train-genai")
    assert answer["snapshot"] == expected[0].snapshot == world.reg.snapshot()
    assert [
        (d["work"], d["outcome"], d["rule"], d["snapshot"], d["event_id"])
        for d in answer["decisions"]
    ] == [(d.work, d.outcome, d.rule, d.snapshot, d.event_id) for d in expected]
    assert answer["decisions"][0]["outcome"] == "reserved"
    assert "reservation for train-ai (covers train-genai)" in answer["decisions"][0]["rule"]


def test_single_check_and_as_of(world):
    before = datetime.now(UTC) - timedelta(days=1)
    world.reg.set_dataset_policy("later", "opt-in")
    now = world.call(
        "GET",
        "/v1/checks",
        "pipeline",
        params={"dataset": "crawl", "purpose": "train-ai", "work": A_WORK},
    ).json()
    assert now["decisions"][0]["outcome"] == "reserved"
    too_early = world.call(
        "POST",
        "/v1/checks",
        "pipeline",
        json={
            "dataset": "later",
            "purpose": "train-ai",
            "works": [A_WORK],
            "as_of": before.isoformat(),
        },
    )
    assert (
        too_early.status_code == 422 and "no declared policy as of" in too_early.json()["problem"]
    )


def test_bulk_check_caps(world):
    world.serve(rate_limit=None, max_works=5)
    body = {"dataset": "crawl", "purpose": "train-ai", "works": [A_WORK] * 6}
    got = world.call("POST", "/v1/checks", "pipeline", json=body)
    assert got.status_code == 413
    assert "at most 5" in got.json()["problem"] and "split" in got.json()["fix"]
    body["works"] = [f"https://x.example/{i}" for i in range(MAX_WORKS + 1)]
    world.serve(rate_limit=None)
    got = world.call("POST", "/v1/checks", "pipeline", json=body)
    assert got.status_code == 422 and "split" in got.json()["fix"]
    assert "https://x.example/1" not in got.text  # the input is not echoed back
    world.serve(rate_limit=None, max_body_bytes=1000)
    body["works"] = [f"https://x.example/{i}" for i in range(100)]
    got = world.call("POST", "/v1/checks", "pipeline", json=body)
    assert got.status_code == 413 and "over 1000 bytes" in got.json()["problem"]


# --- bad input and failures -------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, method, path, body, words",
    [
        ("pipeline", "POST", "/v1/checks", {"dataset": "crawl", "works": [A_WORK]}, "purpose"),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "crawl", "purpose": "train-everything", "works": [A_WORK]},
            "'train-ai'",
        ),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "crawl", "purpose": "train-ai", "works": ["ftp://x/y"]},
            "Malformed work id",
        ),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "crawl", "purpose": "train-ai", "works": []},
            "at least 1",
        ),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "crawl", "purpose": "train-ai", "works": A_WORK},
            "valid list",
        ),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "crawl", "purpose": "train-ai", "works": [A_WORK], "as_of": "2026-01-01"},
            "timezone",
        ),
        (
            "pipeline",
            "POST",
            "/v1/checks",
            {"dataset": "nope", "purpose": "train-ai", "works": [A_WORK]},
            "Unknown dataset",
        ),
        ("admin", "POST", "/v1/tokens", {"scope": "contributor", "account_id": "1"}, "integer"),
        ("admin", "POST", "/v1/tokens", {"scope": "contributor"}, "belongs to an account"),
        ("admin", "POST", "/v1/tokens", {"scope": "root"}, "'admin'"),
        ("admin", "POST", "/v1/accounts", {"name": "x", "admin": True}, "Extra inputs"),
        ("admin", "POST", "/v1/accounts", {"name": "\x07bell"}, "control characters"),
        ("admin", "POST", "/v1/dataset-policies", {"dataset": "d", "policy": "maybe"}, "opt-in"),
        (
            "admin",
            "POST",
            "/v1/identities/999/verification",
            {"method": "dns-txt", "state": "verified"},
            "No identity",
        ),
        ("own", "POST", "/v1/accounts/{ann}/works", {"work": A_WORK}, "registered already"),
        ("own", "POST", "/v1/accounts/{ann}/works", {"work": B_WORK}, "another account"),
        ("own", "POST", "/v1/accounts/{ann}/works", [A_WORK], "valid dictionary"),
        (
            "own",
            "POST",
            "/v1/accounts/{ann}/preferences",
            {"purpose": "train-ai", "value": "maybe"},
            "'allowed' or 'reserved'",
        ),
        (
            "own",
            "POST",
            "/v1/accounts/{ann}/identities",
            {"kind": "domain", "value": "ann.example"},
            "registered already",
        ),
        ("own", "GET", "/v1/accounts/abc", None, "integer"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(world, who, method, path, body, words):
    before = world.reg.event_count()
    got = world.call(method, path.format(ann=world.ann), who, json=body)
    assert 400 <= got.status_code < 500, got.text[:300]
    answer = got.json()
    assert words in answer["problem"], answer
    assert answer["fix"]
    assert world.reg.event_count() == before


def test_a_malformed_body_is_a_clear_422(world):
    got = world.http.post(
        "/v1/checks",
        content=b'{"dataset": "crawl", "works": [',
        headers={
            "Authorization": f"Bearer {world.tokens['pipeline']}",
            "Content-Type": "application/json",
        },
    )
    assert got.status_code == 422 and "JSON" in got.json()["problem"]


def test_an_unexpected_error_is_a_bare_500_and_is_logged(world, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/registry.sqlite")

    monkeypatch.setattr(world.reg, "decide", broken)
    with caplog.at_level(logging.ERROR, logger="datalever.registry.api"):
        got = world.call(
            "GET",
            "/v1/checks",
            "pipeline",
            params={"dataset": "crawl", "purpose": "train-ai", "work": A_WORK},
        )
    assert got.status_code == 500
    assert got.json() == {"problem": "The registry failed unexpectedly.", "fix": "try again later."}
    assert "secret" not in got.text and "Traceback" not in got.text
    assert "secret internals" in caplog.text


def test_a_database_failure_is_a_503_without_its_details(world, monkeypatch):
    def down(*args, **kwargs):
        raise RegistryStorageError("While reading, postgresql://reg:***@db.internal/x failed.")

    monkeypatch.setattr(world.reg, "account", down)
    got = world.call("GET", f"/v1/accounts/{world.ann}", "own")
    assert got.status_code == 503 and "db.internal" not in got.text
    assert got.json()["fix"] == "try again later."


def test_unknown_paths_and_methods_are_json(world):
    assert world.call("GET", "/v1/nothing", "admin").json()["problem"] == "Not Found"
    got = world.call("DELETE", "/v1/checks", "admin")
    assert got.status_code == 405 and got.json()["fix"] == "check the method."


# --- rate limiting ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_per_token_and_refills(world):
    clock = FakeClock()
    world.serve(rate_limit=RateLimit(per_second=2, burst=3), clock=clock)
    codes = [world.call("GET", "/v1/me", "pipeline").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = world.call("GET", "/v1/me", "pipeline")
    assert refused.headers["retry-after"] == "1" and "Too many" in refused.json()["problem"]
    assert world.call("GET", "/v1/me", "admin").status_code == 200  # its own bucket
    assert world.call("GET", "/v1/health", "none").status_code == 200  # by client address
    clock.now += 0.5  # one request's worth
    assert world.call("GET", "/v1/me", "pipeline").status_code == 200
    assert world.call("GET", "/v1/me", "pipeline").status_code == 429


# --- the schema and the command line ----------------------------------------------------------


def test_openapi_schema_is_strict_and_declares_bearer_auth(world):
    schema = world.http.get("/openapi.json").json()
    check = schema["components"]["schemas"]["CheckRequest"]
    assert check["additionalProperties"] is False
    assert check["properties"]["works"]["maxItems"] == MAX_WORKS
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    post = schema["paths"]["/v1/checks"]["post"]
    assert post["security"] == [{"HTTPBearer": []}]
    assert "decisions" in schema["components"]["schemas"]["CheckResponse"]["properties"]
    assert "security" not in schema["paths"]["/v1/health"]["get"]


def test_command_line_creates_accounts_and_tokens(tmp_path):
    runner = CliRunner()
    where = str(tmp_path / "cli.sqlite")
    made = runner.invoke(registry_app, ["account", "ann", "--url", where])
    assert made.exit_code == 0, made.output
    account_id = int(made.output.strip())
    issued = runner.invoke(
        registry_app, ["token", "contributor", "--account", str(account_id), "--url", where]
    )
    assert issued.exit_code == 0, issued.output
    with Registry(where) as reg:
        info = reg.verify_token(issued.output.strip())
        assert (info.scope, info.account_id) == ("contributor", account_id)
    refused = runner.invoke(registry_app, ["token", "contributor", "--url", where])
    assert refused.exit_code == 2 and "belongs to an account" in refused.output
    refused = runner.invoke(registry_app, ["token", "root", "--url", where])
    assert refused.exit_code == 2 and "Unknown token scope" in refused.output
