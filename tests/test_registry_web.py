"""The contributor's web page: signing in with a token, the forms, CSRF, input validation,
escaping, rate limits, cross-account isolation and the session secret, through FastAPI's
TestClient; and one run in headless Chromium against the app served by uvicorn."""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

with warnings.catch_warnings():  # Starlette suggests another HTTP library for its test client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from datalever.errors import DataleverError
from datalever.registry import Registry
from datalever.registry.api import RateLimit, create_app
from datalever.registry.registry import RegistryStorageError
from datalever.registry.web import (
    COOKIE,
    SECRET_ENV,
    SECRET_FILE_ENV,
    SIGN_IN_LIMIT,
    WebSession,
    add_web_routes,
    read_session_secret,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "web-secret-" + "w" * 40
ADMIN_SECRET = "bootstrap-" + "s" * 40
A_WORK = "https://ann.example/a.png"
B_WORK = "https://bob.example/b.png"


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    registry = Registry(tmp_path / "registry.sqlite")
    yield registry
    registry.close()


class Site:
    """Ann and Bob (each with a work and a contributor token), a pipeline and an admin
    token, an opt-out dataset, and the app that serves the page."""

    def __init__(self, reg: Registry, **app_options) -> None:
        self.reg = reg
        reg.set_dataset_policy("crawl", "opt-out")
        self.ann, self.bob = reg.create_account("ann"), reg.create_account("bob")
        reg.register_work(self.ann, A_WORK)
        reg.register_work(self.bob, B_WORK)
        self.tokens = {
            "ann": reg.issue_token("contributor", self.ann),
            "bob": reg.issue_token("contributor", self.bob),
            "pipeline": reg.issue_token("pipeline"),
            "admin": reg.issue_token("admin"),
        }
        self.serve(**({"rate_limit": None} | app_options))

    def serve(self, **app_options) -> None:
        self.app = create_app(self.reg, admin_token=ADMIN_SECRET, **app_options)

    def browser(self, **options) -> TestClient:
        """A client that asks for HTML and keeps cookies, as a browser does."""
        return TestClient(
            self.app, raise_server_exceptions=False, headers={"Accept": "text/html"}, **options
        )

    def signed_in(self, who: str) -> TestClient:
        client = self.browser()
        got = sign_in(client, self.tokens[who])
        assert got.status_code == 200 and got.url.path == "/web/account", got.text[:300]
        return client

    def state(self) -> tuple:
        """Everything a form could change, read from the database."""
        with self.reg.engine.connect() as conn:
            works = conn.execute(sa.text("SELECT account_id, ref FROM works ORDER BY id")).all()
        return self.reg.event_count(), works, self.reg.account(self.ann), self.reg.account(self.bob)


@pytest.fixture
def site(reg) -> Site:
    return Site(reg)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def sign_in(client: TestClient, token: str):
    form = client.get("/web/")
    return client.post("/web/sign-in", data={"csrf": csrf_of(form.text), "token": token})


def post(client: TestClient, path: str, **fields: str):
    """A form posted from the account page, with that page's CSRF token."""
    page = client.get("/web/account")
    return client.post(path, data={"csrf": csrf_of(page.text), **fields})


def problem_of(page: str) -> str:
    found = re.search(r'<div class="problem"[^>]*>(.*?)</div>', page, re.S)
    assert found, page[:500]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip())


# --- signing in ----------------------------------------------------------------------------


def test_sign_in_sets_a_signed_cookie_that_is_not_the_token(site):
    client = site.browser()
    assert client.get("/").url.path == "/web/"
    got = sign_in(client, site.tokens["ann"])
    assert got.url.path == "/web/account" and '<h1 id="account-name">ann</h1>' in got.text
    set_cookie = got.history[0].headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    assert "Secure" not in set_cookie  # plain http (a test server): a Secure cookie is not sent
    cookie = client.cookies[COOKIE]
    assert site.tokens["ann"] not in cookie and site.tokens["ann"] not in got.text
    # signed in, the sign-in page sends the contributor on to the account
    assert client.get("/web/").url.path == "/web/account"


def test_the_cookie_is_secure_over_https(site):
    client = site.browser(base_url="https://registry.example")
    got = sign_in(client, site.tokens["ann"])
    assert "Secure" in got.history[0].headers["set-cookie"]
    assert got.url.path == "/web/account"


def test_pages_carry_security_headers_and_no_script(site):
    client = site.browser()
    for page in (client.get("/web/"), sign_in(client, site.tokens["ann"])):
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text.lower()


@pytest.mark.parametrize(
    "who, status, words",
    [
        ("pipeline", 403, "scope pipeline: it cannot sign in"),
        ("admin", 403, "scope admin: it cannot sign in"),
        ("bootstrap", 403, "unknown or revoked"),
        ("unknown", 403, "unknown or revoked"),
        ("blank", 422, "No token was given"),
    ],
)
def test_only_contributor_tokens_sign_in(site, who, status, words):
    token = {
        "bootstrap": ADMIN_SECRET,
        "unknown": "x" * 43,
        "blank": "   ",
    }.get(who) or site.tokens[who]
    client = site.browser()
    got = sign_in(client, token)
    assert got.status_code == status and got.url.path == "/web/sign-in"
    assert words in problem_of(got.text) and "Fix:" in problem_of(got.text)
    assert client.get("/web/account").url.path == "/web/"  # still signed out


def test_revoking_the_token_ends_its_sessions(site):
    client = site.signed_in("ann")
    site.reg.revoke_token(site.reg.verify_token(site.tokens["ann"]).token_id)
    assert client.get("/web/account").url.path == "/web/"
    before = site.state()
    got = client.post("/web/works", data={"csrf": "anything", "work": "https://ann.example/z"})
    assert got.status_code == 403 and site.state() == before


def test_a_forged_tampered_or_expired_cookie_is_no_session(site):
    client = site.signed_in("ann")
    web = site.app.state.web
    payload, mac = client.cookies[COOKIE].split(".")
    ann_token_id = site.reg.verify_token(site.tokens["ann"]).token_id
    forgeries = [
        f"{payload}.{mac[:-2]}AA",
        f"{payload}x.{mac}",
        "not-a-cookie",
        # signed with another secret
        other_site(b"other-" + b"o" * 40).seal(
            WebSession("n", int(time.time()) + 600, site.ann, ann_token_id)
        ),
        # bob's session pointing at ann's token, or at ann's account with bob's token
        web.seal(WebSession("n", int(time.time()) + 600, site.bob, ann_token_id)),
        web.seal(
            WebSession(
                "n",
                int(time.time()) + 600,
                site.ann,
                site.reg.verify_token(site.tokens["bob"]).token_id,
            )
        ),
        web.seal(WebSession("n", int(time.time()) - 1, site.ann, ann_token_id)),  # expired
    ]
    for cookie in forgeries:
        fresh = site.browser()
        fresh.cookies.set(COOKIE, cookie)
        got = fresh.get("/web/account")
        assert got.url.path == "/web/" and "Sign in" in got.text, cookie


def other_site(secret: bytes):
    """The page's state in another app, with its own secret."""
    app = FastAPI()
    add_web_routes(app, secret=secret)
    return app.state.web


def test_sign_out_ends_the_session(site):
    client = site.signed_in("ann")
    got = post(client, "/web/sign-out")
    assert got.url.path == "/web/" and "You are signed out." in got.text
    cleared = got.history[0].headers["set-cookie"]
    assert cleared.startswith(f'{COOKIE}=""') and "Max-Age=0" in cleared
    assert client.get("/web/account").url.path == "/web/"


# --- the forms -------------------------------------------------------------------------------


def test_register_a_work_reserve_it_and_see_the_history(site):
    client = site.signed_in("ann")
    got = post(client, "/web/works", work="HTTPS://Ann.Example/new.png#top")
    assert got.status_code == 200 and "The work is registered." in got.text
    assert "url:https://ann.example/new.png" in got.text
    got = post(
        client,
        "/web/preferences",
        work="url:https://ann.example/new.png",
        purpose="train-ai",
        value="reserved",
    )
    assert "Your preference is recorded." in got.text
    got = post(client, "/web/preferences", work="", purpose="search", value="allowed")
    account = site.reg.account(site.ann)
    assert [(p["work"], p["purpose"], p["value"]) for p in account["preferences"]] == [
        ("url:https://ann.example/new.png", "train-ai", "reserved"),
        (None, "search", "allowed"),
    ]
    decided = site.reg.decide("crawl", ["https://ann.example/new.png", A_WORK], "train-genai")
    assert [d.outcome for d in decided] == ["reserved", "allowed"]
    history = re.findall(r'<tr class="event">(.*?)</tr>', got.text, re.S)
    assert len(history) == len(site.reg.events(site.ann))
    assert "Allowed search for all my works" in history[0]
    assert "Reserved train-ai for url:https://ann.example/new.png" in history[1]
    assert "Registered url:https://ann.example/new.png" in history[2]


def test_a_post_without_the_right_csrf_token_is_403_and_changes_nothing(site):
    ann, bob = site.signed_in("ann"), site.signed_in("bob")
    bob_token = csrf_of(bob.get("/web/account").text)
    ann_token = csrf_of(ann.get("/web/account").text)
    before = site.state()
    forms = [
        ("/web/works", {"work": "https://ann.example/csrf.png"}),
        ("/web/preferences", {"work": A_WORK, "purpose": "train-ai", "value": "allowed"}),
        ("/web/sign-out", {}),
    ]
    for path, fields in forms:
        for csrf in (None, "", "x" * 43, bob_token, ann_token[:-1]):
            data = fields if csrf is None else {**fields, "csrf": csrf}
            got = ann.post(path, data=data)
            assert got.status_code == 403, (path, csrf, got.status_code)
            assert "security token" in problem_of(got.text)
        # the same form from a client without the session cookie
        stranger = site.browser()
        got = stranger.post(path, data={**fields, "csrf": ann_token})
        assert got.status_code == 403 and "session cookie" in problem_of(got.text)
    # a script asking for JSON gets the API's problem format
    got = ann.post("/web/works", data=forms[0][1], headers={"Accept": "application/json"})
    assert got.status_code == 403 and set(got.json()) == {"problem", "fix"}
    assert site.state() == before
    assert ann.get("/web/account").url.path == "/web/account"  # sign-out was refused too


def test_the_sign_in_form_needs_its_csrf_token(site):
    client = site.browser()
    client.get("/web/")
    got = client.post("/web/sign-in", data={"token": site.tokens["ann"]})
    assert got.status_code == 403
    got = site.browser().post("/web/sign-in", data={"csrf": "x", "token": site.tokens["ann"]})
    assert got.status_code == 403
    assert client.get("/web/account").url.path == "/web/"


@pytest.mark.parametrize(
    "path, fields, words",
    [
        ("/web/works", {"work": "ftp://ann.example/x"}, "Malformed work id"),
        ("/web/works", {"work": "no kind"}, "spaces or control characters"),
        ("/web/works", {"work": ""}, "Malformed work id"),
        ("/web/works", {}, "Malformed work id"),
        ("/web/works", {"work": "https://x.example/" + "a" * 3000}, "Malformed work id"),
        ("/web/works", {"work": A_WORK}, "registered already to this account"),
        ("/web/works", {"work": B_WORK}, "registered already to another account"),
        ("/web/preferences", {"work": "", "purpose": "train-all", "value": "reserved"}, "purpose"),
        ("/web/preferences", {"work": "", "purpose": "train-ai", "value": "maybe"}, "'maybe'"),
        ("/web/preferences", {"purpose": "train-ai"}, "reserved or allowed"),
        (
            "/web/preferences",
            {"work": B_WORK, "purpose": "train-ai", "value": "allowed"},
            "not registered to account",
        ),
        (
            "/web/preferences",
            {"work": "sha256:abc", "purpose": "train-ai", "value": "allowed"},
            "64 hexadecimal digits",
        ),
    ],
)
def test_bad_input_shows_the_problem_and_its_fix_and_changes_nothing(site, path, fields, words):
    client = site.signed_in("ann")
    before = site.state()
    got = post(client, path, **fields)
    assert got.status_code == 422, got.text[:300]
    shown = problem_of(got.text)
    assert words in shown and "Fix:" in shown, shown
    assert '<h1 id="account-name">ann</h1>' in got.text  # the page, not an error
    assert "Traceback" not in got.text
    assert site.state() == before


def test_a_malformed_body_is_refused_not_a_500(site):
    client = site.signed_in("ann")
    before = site.state()
    bodies = [
        (b"--xx\r\nbroken", "multipart/form-data; boundary=xx"),
        (b"\xff\xfe=%%%&csrf", "application/x-www-form-urlencoded"),
        (b'{"work": "https://ann.example/j"}', "application/json"),
    ]
    for body, kind in bodies:
        got = client.post("/web/works", content=body, headers={"Content-Type": kind})
        assert got.status_code == 403 and "Traceback" not in got.text, got.text[:300]
    assert site.state() == before


def test_user_text_is_escaped(site):
    evil = site.reg.create_account('<script>alert("name")</script>')
    token = site.reg.issue_token("contributor", evil)
    client = site.browser()
    got = sign_in(client, token)
    assert "<script>alert" not in got.text
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in got.text
    work = "https://evil.example/<script>alert(1)</script>"
    got = post(client, "/web/works", work=work)
    assert "The work is registered." in got.text
    assert "<script>alert(1)" not in got.text
    assert "url:https://evil.example/&lt;script&gt;alert(1)&lt;/script&gt;" in got.text
    got = post(client, "/web/works", work='<img src=x onerror="alert(2)">')
    assert got.status_code == 422 and "<img" not in got.text and "&lt;img" in got.text
    got = post(client, "/web/works", work='<b>"x"</b>')
    assert got.status_code == 422 and "<b>" not in got.text
    assert 'value="&lt;b&gt;&#34;x&#34;&lt;/b&gt;"' in got.text  # the input is kept, escaped


def test_notices_come_from_a_fixed_list(site):
    client = site.signed_in("ann")
    got = client.get("/web/account", params={"done": "<script>x</script>"})
    assert got.status_code == 200 and 'id="notice"' not in got.text
    assert "<script" not in got.text and "&lt;script" not in got.text


# --- isolation -------------------------------------------------------------------------------


def test_a_contributor_sees_and_changes_only_their_own_account(site):
    site.reg.add_identity(site.ann, "github", "ann-draws")
    site.reg.set_preference(site.ann, "train-ai", "reserved", work=A_WORK)
    bob = site.signed_in("bob")
    page = bob.get("/web/account").text
    assert '<h1 id="account-name">bob</h1>' in page and "bob.example" in page
    assert "ann.example" not in page and "ann-draws" not in page and ">ann<" not in page
    before = site.state()
    attempts = [
        ("/web/preferences", {"work": A_WORK, "purpose": "train-ai", "value": "allowed"}),
        (
            "/web/preferences",
            {
                "work": A_WORK,
                "purpose": "train-ai",
                "value": "allowed",
                "account_id": str(site.ann),
            },
        ),
        ("/web/works", {"work": A_WORK}),
        ("/web/works", {"work": "HTTPS://ANN.EXAMPLE/a.png", "account_id": str(site.ann)}),
    ]
    for path, fields in attempts:
        got = post(bob, path, **fields)
        assert got.status_code == 422, got.text[:300]
        assert "ann-draws" not in got.text and '"name":"ann"' not in got.text
    assert site.state() == before
    # a statement bob makes for his whole account leaves ann's works alone
    assert (
        post(bob, "/web/preferences", work="", purpose="tdm", value="reserved").status_code == 200
    )
    assert site.reg.account(site.ann) == before[2]
    decided = site.reg.decide("crawl", [A_WORK, B_WORK], "search")
    assert [d.outcome for d in decided] == ["allowed", "reserved"]


# --- rate limits -----------------------------------------------------------------------------


def test_repeated_bad_sign_ins_get_429(site):
    client = site.browser()
    csrf = csrf_of(client.get("/web/").text)
    codes = [
        client.post("/web/sign-in", data={"csrf": csrf, "token": f"guess-{i}"}).status_code
        for i in range(SIGN_IN_LIMIT.burst + 2)
    ]
    assert codes == [403] * SIGN_IN_LIMIT.burst + [429, 429]
    refused = client.post("/web/sign-in", data={"csrf": csrf, "token": site.tokens["ann"]})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in problem_of(refused.text)
    assert client.get("/web/account").url.path == "/web/"  # the right token waits too


def test_sign_in_attempts_refill_with_time(site):
    now = [1000.0]
    site.serve(rate_limit=None, clock=lambda: now[0])
    client = site.browser()
    csrf = csrf_of(client.get("/web/").text)
    for _ in range(SIGN_IN_LIMIT.burst):
        client.post("/web/sign-in", data={"csrf": csrf, "token": "guess"})
    assert client.post("/web/sign-in", data={"csrf": csrf, "token": "g"}).status_code == 429
    now[0] += 1 / SIGN_IN_LIMIT.per_second
    got = client.post("/web/sign-in", data={"csrf": csrf, "token": site.tokens["ann"]})
    assert got.url.path == "/web/account"


def test_the_apps_rate_limit_covers_the_page(site):
    site.serve(rate_limit=RateLimit(per_second=1, burst=3), clock=lambda: 1000.0)
    client = site.browser()
    csrf = csrf_of(client.get("/web/").text)
    codes = [
        client.post("/web/sign-in", data={"csrf": csrf, "token": "guess"}).status_code
        for _ in range(3)
    ]
    assert codes == [403, 403, 429]
    assert client.get("/web/").status_code == 429


# --- the secret and failures -----------------------------------------------------------------


def test_the_secret_comes_from_the_environment_or_a_file(tmp_path):
    assert read_session_secret({}) is None
    assert read_session_secret({SECRET_ENV: SECRET}) == SECRET.encode()
    path = tmp_path / "secret"
    path.write_text("from-a-file-" + "f" * 40 + "\n")
    assert read_session_secret({SECRET_FILE_ENV: str(path)}) == b"from-a-file-" + b"f" * 40
    with pytest.raises(DataleverError, match="Cannot read the web session secret file"):
        read_session_secret({SECRET_FILE_ENV: str(tmp_path / "missing")})
    with pytest.raises(DataleverError, match="shorter than 32") as e:
        read_session_secret({SECRET_ENV: "hunter2"})
    assert e.value.fix


def test_sessions_survive_a_restart_only_with_a_configured_secret(site, monkeypatch, caplog):
    client = site.signed_in("ann")
    site.serve(rate_limit=None)  # a restart, same secret
    restarted = site.browser()
    restarted.cookies.set(COOKIE, client.cookies[COOKIE])
    assert restarted.get("/web/account").url.path == "/web/account"
    monkeypatch.delenv(SECRET_ENV)
    with caplog.at_level(logging.WARNING, logger="datalever.registry.web"):
        site.serve(rate_limit=None)
    assert "end when the registry restarts" in caplog.text
    restarted = site.browser()
    restarted.cookies.set(COOKIE, client.cookies[COOKIE])
    assert restarted.get("/web/account").url.path == "/web/"


def test_a_database_failure_is_a_503_page_without_its_details(site, monkeypatch):
    client = site.signed_in("ann")

    def down(*args, **kwargs):
        raise RegistryStorageError("While reading, postgresql://reg:***@db.internal/x failed.")

    monkeypatch.setattr(site.reg, "account", down)
    got = client.get("/web/account")
    assert got.status_code == 503 and "db.internal" not in got.text
    assert "try again later" in problem_of(got.text)
    monkeypatch.setattr(site.reg, "register_work", down)
    got = post_without_page(client, "/web/works", work="https://ann.example/q")
    assert got.status_code == 503 and "db.internal" not in got.text


def post_without_page(client: TestClient, path: str, **fields: str):
    """A form posted with the CSRF token of the sign-in page's session (the same nonce)."""
    web = client.app.state.web
    session = web.open(client.cookies[COOKIE])
    return client.post(path, data={"csrf": web.csrf(session), **fields})


# --- in a real browser -----------------------------------------------------------------------


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def served(site):
    """The app served by uvicorn on a free 127.0.0.1 port, in a thread."""
    import uvicorn

    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(site.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_in_a_browser_a_contributor_signs_in_opts_out_a_work_and_sees_the_history(site, served):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    dee = site.reg.create_account("Dee Painter")
    token = site.reg.issue_token("contributor", dee)
    work = "https://dee.example/paintings/harbour.jpg"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(served + "/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url("**/web/account")
        assert page.locator("#account-name").inner_text() == "Dee Painter"
        cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert token not in cookie["value"]

        page.fill("#work", work)
        page.click("#register-work")
        page.wait_for_url("**/web/account?done=work")
        assert page.locator("#notice").inner_text() == "The work is registered."

        page.select_option("#pref-work", f"url:{work}")
        page.select_option("#pref-purpose", "train-ai")
        page.select_option("#pref-value", "reserved")
        page.click("#set-preference")
        page.wait_for_url("**/web/account?done=preference")
        cells = page.locator("#preferences tbody td").all_inner_texts()
        assert cells[:3] == [f"url:{work}", "train-ai", "reserved"]
        rows = page.locator("#history tbody tr")
        history = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
        kinds = [row[2] for row in history]
        assert kinds == ["preference_set", "work_registered", "token_issued", "account_created"]
        assert history[0][3] == f"Reserved train-ai for url:{work}"
        assert history[1][3] == f"Registered url:{work}"

        page.click("#sign-out")
        page.wait_for_url("**/web/?done=signed-out")
        assert page.locator("#token").is_visible()
        browser.close()

    decision = site.reg.decide("crawl", [work], "train-ai")[0]
    assert decision.outcome == "reserved" and "reservation for train-ai" in decision.rule
