"""Domain verification against real local servers: a UDP nameserver built with dnspython and
a stdlib HTTP server, both on 127.0.0.1. Nothing is mocked and nothing leaves the machine."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import httpx
import pytest

from datalever.errors import DataleverError
from datalever.registry import Registry
from datalever.registry.verify import (
    MAX_PROOF_BYTES,
    WELL_KNOWN_PATH,
    challenge,
    challenge_for,
    load_secret,
    normalize_domain,
    verify_domain,
)

SECRET = b"a test secret of more than sixteen bytes"
SILENT = object()  # the nameserver drops the query
NXDOMAIN = object()
SERVFAIL = object()


class Nameserver:
    """A UDP nameserver on 127.0.0.1 answering TXT queries from ``records``: a list of
    records (each a list of character strings), or one of SILENT, NXDOMAIN, SERVFAIL.
    Names not listed answer NOERROR with no records."""

    def __init__(self) -> None:
        self.records: dict[str, object] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                wire, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            qname = query.question[0].name.to_text(omit_final_dot=True).lower()
            self.queries.append(qname)
            entry = self.records.get(qname, [])
            if entry is SILENT:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if entry is NXDOMAIN:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif entry is SERVFAIL:
                response.set_rcode(dns.rcode.SERVFAIL)
            elif entry:
                rrset = dns.rrset.RRset(
                    query.question[0].name, dns.rdataclass.IN, dns.rdatatype.TXT
                )
                rrset.ttl = 60
                for strings in entry:
                    text = " ".join('"' + s.replace('"', '\\"') + '"' for s in strings)
                    rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, text))
                response.answer.append(rrset)
            self.sock.sendto(response.to_wire(), peer)

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.port = self.port
        resolver.nameservers = ["127.0.0.1"]
        return resolver

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


class Site(BaseHTTPRequestHandler):
    """Answers by ``self.server.pages``: path -> (status, headers, body)."""

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(self.path)
        status, headers, body = self.server.pages.get(self.path, (404, {}, b"missing\n"))
        if status == "slow":
            time.sleep(2)
            status = 200
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nameserver() -> Iterator[Nameserver]:
    server = Nameserver()
    yield server
    server.close()


@pytest.fixture
def site() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.pages = {}
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def reg(tmp_path) -> Iterator[Registry]:
    registry = Registry(tmp_path / "registry.sqlite")
    yield registry
    registry.close()


@pytest.fixture
def ann(reg) -> int:
    return reg.create_account("ann")


def txt_name(domain: str) -> str:
    return f"_datalever-challenge.{domain}"


def proof(identity_id: int, domain: str) -> str:
    return f"datalever-verification={challenge(SECRET, identity_id, domain)}"


def recorded(reg: Registry, identity_id: int) -> list[tuple[str, str]]:
    """(method, state) of every verification event of one identity, oldest first."""
    out = []
    for event in reg.events():
        if event["kind"] == "identity_verified":
            detail = json.loads(event["detail"])
            if detail["identity_id"] == identity_id:
                out.append((detail["method"], event["value"]))
    return out


# --- the challenge ---------------------------------------------------------------------------


def test_challenge_differs_per_identity_domain_and_secret():
    base = challenge(SECRET, 1, "art.example")
    assert len(base) == 64 and int(base, 16) >= 0
    assert challenge(SECRET, 1, "art.example") == base
    assert challenge(SECRET, 1, "ART.example.") == base  # the same domain, normalised
    assert challenge(SECRET, 2, "art.example") != base
    assert challenge(SECRET, 1, "other.example") != base
    assert challenge(b"another secret, also long enough", 1, "art.example") != base
    assert challenge(SECRET.decode(), 1, "art.example") == base  # text and bytes agree


def test_short_or_missing_secret_is_refused(tmp_path, monkeypatch):
    for weak in (b"", "short", b"fifteen bytes!!"):
        with pytest.raises(DataleverError, match="shorter than 16 bytes"):
            challenge(weak, 1, "art.example")
    monkeypatch.delenv("DATALEVER_REGISTRY_SECRET", raising=False)
    with pytest.raises(DataleverError, match="DATALEVER_REGISTRY_SECRET"):
        load_secret()
    monkeypatch.setenv("DATALEVER_REGISTRY_SECRET", " from the environment, long \n")
    assert load_secret() == b"from the environment, long"
    path = tmp_path / "secret"
    path.write_bytes(b"from a file, also long enough\n")
    assert load_secret(path) == b"from a file, also long enough"
    with pytest.raises(DataleverError, match="Cannot read the registry secret file"):
        load_secret(tmp_path / "absent")


def test_challenge_for_tells_the_owner_what_to_publish(reg, ann):
    ident = reg.add_identity(ann, "domain", "Bücher.Example")
    wanted = challenge_for(reg, ident, secret=SECRET)
    assert wanted.domain == "xn--bcher-kva.example"
    assert wanted.value == challenge(SECRET, ident, "xn--bcher-kva.example")
    assert wanted.txt_name == "_datalever-challenge.xn--bcher-kva.example"
    assert wanted.txt_value == f"datalever-verification={wanted.value}"
    # production always fetches from the domain itself, over HTTPS
    assert wanted.well_known_url == f"https://xn--bcher-kva.example{WELL_KNOWN_PATH}"


# --- domain names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.org", "example.org"),
        (" Example.ORG. ", "example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("x" * 63 + ".example", "x" * 63 + ".example"),
    ],
)
def test_domain_names_are_normalised(given, expected):
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "https://example.org",
        "example.org/path",
        "example.org:443",
        "user@example.org",
        "exa mple.org",
        "localhost",
        "127.0.0.1",
        "-bad.example",
        "bad-.example",
        "under_score.example",
        "a..example",
        "x" * 64 + ".example",
        ".".join(["abcdefghi"] * 26) + ".example",  # over 253 characters
        "example.org\nevil.example",
        "exa\x00mple.org",
        "*.example.org",
    ],
)
def test_bad_domain_names_are_refused(given):
    with pytest.raises(DataleverError, match="is not a domain name"):
        normalize_domain(given)


def test_bad_domain_is_refused_before_any_lookup(reg, ann, nameserver, site):
    ident = reg.add_identity(ann, "domain", "https://good.example/")
    before = reg.event_count()
    with pytest.raises(DataleverError, match="is not a domain name"):
        verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    with pytest.raises(DataleverError, match="is not a domain name"):
        verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert nameserver.queries == [] and site.requests == []
    assert reg.event_count() == before


# --- the caller's mistakes -------------------------------------------------------------------


def test_unknown_identity_wrong_kind_and_unknown_method(reg, ann, nameserver):
    github = reg.add_identity(ann, "github", "ann-draws")
    domain = reg.add_identity(ann, "domain", "good.example")
    before = reg.event_count()
    with pytest.raises(DataleverError, match="No identity 999"):
        verify_domain(reg, 999, secret=SECRET, resolver=nameserver.resolver())
    with pytest.raises(DataleverError, match="No identity"):
        verify_domain(reg, "1", secret=SECRET, resolver=nameserver.resolver())
    with pytest.raises(DataleverError, match="is a github identity"):
        verify_domain(reg, github, secret=SECRET, resolver=nameserver.resolver())
    with pytest.raises(DataleverError, match="Unknown verification method"):
        verify_domain(reg, domain, secret=SECRET, method="carrier-pigeon")
    with pytest.raises(DataleverError, match="shorter than 16 bytes"):
        verify_domain(reg, domain, secret="", resolver=nameserver.resolver())
    with pytest.raises(DataleverError, match="not an http"):
        verify_domain(reg, domain, secret=SECRET, method="well-known", base_url="ftp://x")
    with pytest.raises(DataleverError, match="timeout"):
        verify_domain(reg, domain, secret=SECRET, timeout=0)
    assert nameserver.queries == []
    assert reg.event_count() == before


def test_identity_reads_one_identity(reg, ann):
    ident = reg.add_identity(ann, "domain", "good.example")
    assert reg.identity(ident) == {
        "id": ident,
        "account_id": ann,
        "kind": "domain",
        "value": "good.example",
        "method": None,
        "state": "unverified",
    }
    reg.set_identity_state(ident, "dns-txt", "verified")
    assert reg.identity(ident)["method"] == "dns-txt"
    assert reg.identity(ident)["state"] == "verified"
    assert reg.identity(ident + 1) is None
    assert reg.identity("1") is None and reg.identity(True) is None


# --- DNS TXT ---------------------------------------------------------------------------------


def test_dns_right_record_verifies(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "Good.Example")
    nameserver.records[txt_name("good.example")] = [
        ["v=spf1 -all"],
        [proof(ident, "good.example")],
    ]
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "verified" and result.method == "dns-txt"
    assert (
        result.detail == "the TXT record at _datalever-challenge.good.example holds the challenge."
    )
    assert nameserver.queries == ["_datalever-challenge.good.example"]
    assert reg.identity(ident)["state"] == "verified"
    assert reg.identity(ident)["method"] == "dns-txt"
    assert recorded(reg, ident) == [("dns-txt", "verified")]
    assert reg.events()[-1]["id"] == result.event_id


def test_dns_record_split_into_strings_is_joined(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "split.example")
    whole = proof(ident, "split.example")
    nameserver.records[txt_name("split.example")] = [[whole[:30], whole[30:]]]
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "verified"


def test_dns_wrong_value_fails(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "wrong.example")
    other = reg.add_identity(ann, "domain", "other.example")
    nameserver.records[txt_name("wrong.example")] = [
        ["datalever-verification=0000"],
        [proof(other, "wrong.example")],  # another identity's challenge for this domain
        [proof(ident, "other.example")],  # this identity's id, another domain
    ]
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "failed"
    assert result.detail == (
        "_datalever-challenge.wrong.example has 3 datalever-verification=… record(s), "
        "none with this identity's challenge."
    )
    assert reg.identity(ident)["state"] == "failed"
    assert recorded(reg, ident) == [("dns-txt", "failed")]


def test_dns_record_with_another_secret_fails(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "good.example")
    nameserver.records[txt_name("good.example")] = [[proof(ident, "good.example")]]
    result = verify_domain(
        reg, ident, secret=b"the secret after a rotation, long", resolver=nameserver.resolver()
    )
    assert result.state == "failed"


def test_dns_unrelated_records_only(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "spf.example")
    nameserver.records[txt_name("spf.example")] = [["v=spf1 -all"]]
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "failed"
    assert "has 1 TXT record(s), none starting datalever-verification=" in result.detail


def test_dns_nxdomain_fails(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "gone.example")
    nameserver.records[txt_name("gone.example")] = NXDOMAIN
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "failed"
    assert result.detail == "_datalever-challenge.gone.example does not exist in DNS (NXDOMAIN)."
    assert reg.identity(ident)["state"] == "failed"


def test_dns_no_answer_fails(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "empty.example")
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert result.state == "failed"
    assert result.detail == "_datalever-challenge.empty.example exists but has no TXT record."


def test_dns_servfail_fails(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "broken.example")
    nameserver.records[txt_name("broken.example")] = SERVFAIL
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver(), timeout=1)
    assert result.state == "failed"
    assert result.detail == (
        "every nameserver failed or refused to answer for _datalever-challenge.broken.example."
    )


def test_dns_timeout_fails_within_the_limit(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "silent.example")
    nameserver.records[txt_name("silent.example")] = SILENT
    began = time.monotonic()
    result = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver(), timeout=0.5)
    assert time.monotonic() - began < 3
    assert result.state == "failed"
    assert result.detail == "no DNS answer for _datalever-challenge.silent.example within 0.5 s."
    assert nameserver.queries  # it was asked, and never answered
    assert reg.identity(ident)["state"] == "failed"


def test_verified_domain_that_fails_again_is_recorded_failed(reg, ann, nameserver):
    ident = reg.add_identity(ann, "domain", "good.example")
    nameserver.records[txt_name("good.example")] = [[proof(ident, "good.example")]]
    first = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    nameserver.records[txt_name("good.example")] = NXDOMAIN  # the owner removed the record
    second = verify_domain(reg, ident, secret=SECRET, resolver=nameserver.resolver())
    assert (first.state, second.state) == ("verified", "failed")
    assert second.event_id > first.event_id
    assert recorded(reg, ident) == [("dns-txt", "verified"), ("dns-txt", "failed")]
    assert reg.identity(ident)["state"] == "failed"
    # the log still shows it was verified before
    assert reg.identity(ident)["method"] == "dns-txt"


# --- the well-known file ---------------------------------------------------------------------


def page(body: bytes, status: int = 200, **headers: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "text/plain", **headers}, body


def test_well_known_right_file_verifies(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "good.example")
    value = challenge(SECRET, ident, "good.example")
    site.pages[WELL_KNOWN_PATH] = page(f"# datalever\n  {value}  \r\nother line\n".encode())
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "verified" and result.method == "well-known"
    assert result.detail == f"{site.base}{WELL_KNOWN_PATH} holds the challenge."
    assert reg.identity(ident)["method"] == "well-known"
    assert recorded(reg, ident) == [("well-known", "verified")]


def test_well_known_accepts_the_txt_form_and_a_base_path(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "good.example")
    site.pages["/good" + WELL_KNOWN_PATH] = page(proof(ident, "good.example").encode())
    result = verify_domain(
        reg, ident, secret=SECRET, method="well-known", base_url=site.base + "/good/"
    )
    assert result.state == "verified"


def test_well_known_wrong_value_fails(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "wrong.example")
    value = challenge(SECRET, ident, "wrong.example")
    site.pages[WELL_KNOWN_PATH] = page(f"prefix {value}\n{value[:-1]}\n".encode())
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed"
    assert result.detail.endswith("does not hold this identity's challenge on a line of its own.")
    assert reg.identity(ident)["state"] == "failed"


@pytest.mark.parametrize("status", [404, 500])
def test_well_known_http_error_fails(reg, ann, site, status):
    ident = reg.add_identity(ann, "domain", "missing.example")
    site.pages[WELL_KNOWN_PATH] = page(b"nope", status=status)
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed"
    assert result.detail == f"{site.base}{WELL_KNOWN_PATH} answered HTTP {status}."
    assert recorded(reg, ident) == [("well-known", "failed")]


def test_well_known_huge_body_is_capped(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "huge.example")
    value = challenge(SECRET, ident, "huge.example").encode()
    # no Content-Length: the cap holds while streaming, and the challenge past it is unseen
    site.pages[WELL_KNOWN_PATH] = page(b"x" * (4 * MAX_PROOF_BYTES) + b"\n" + value + b"\n")
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed"
    assert result.detail.endswith("is larger than 64 KiB; the proof is one short line.")
    # a declared length over the cap is refused before the body is read
    body = value + b"\n" + b"x" * (2 * MAX_PROOF_BYTES)
    site.pages[WELL_KNOWN_PATH] = page(body, **{"Content-Length": str(len(body))})
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed" and "larger than 64 KiB" in result.detail


def test_well_known_redirect_to_another_host_is_not_followed(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "moved.example")
    port = site.server_address[1]
    value = challenge(SECRET, ident, "moved.example").encode()
    site.pages["/elsewhere"] = page(value)
    site.pages[WELL_KNOWN_PATH] = page(
        b"", status=302, Location=f"http://localhost:{port}/elsewhere"
    )
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed"
    assert result.detail == (
        f"{site.base}{WELL_KNOWN_PATH} redirects to another host or scheme "
        f"(localhost:{port}); only the domain itself may answer."
    )
    assert site.requests == [WELL_KNOWN_PATH]  # the other host was never asked


def test_well_known_redirect_within_the_host_is_followed(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "moved.example")
    site.pages[WELL_KNOWN_PATH] = page(b"", status=301, Location="/proof.txt")
    site.pages["/proof.txt"] = page(challenge(SECRET, ident, "moved.example").encode())
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "verified"
    assert site.requests == [WELL_KNOWN_PATH, "/proof.txt"]


def test_well_known_redirect_loop_fails(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "loop.example")
    site.pages[WELL_KNOWN_PATH] = page(b"", status=302, Location=WELL_KNOWN_PATH)
    result = verify_domain(reg, ident, secret=SECRET, method="well-known", base_url=site.base)
    assert result.state == "failed"
    assert result.detail.endswith("redirected more than 5 times.")
    assert len(site.requests) == 6


def test_well_known_slow_server_times_out(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "slow.example")
    site.pages[WELL_KNOWN_PATH] = ("slow", {}, b"late\n")
    began = time.monotonic()
    result = verify_domain(
        reg, ident, secret=SECRET, method="well-known", base_url=site.base, timeout=0.5
    )
    assert time.monotonic() - began < 1.9
    assert result.state == "failed"
    assert result.detail == f"{site.base}{WELL_KNOWN_PATH} did not answer within 0.5 s."


def test_well_known_refused_connection_fails(reg, ann):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ident = reg.add_identity(ann, "domain", "down.example")
    result = verify_domain(
        reg, ident, secret=SECRET, method="well-known", base_url=f"http://127.0.0.1:{port}"
    )
    assert result.state == "failed"
    assert result.detail.startswith(f"could not connect to http://127.0.0.1:{port}")


def test_well_known_with_a_given_client_ignores_its_redirect_setting(reg, ann, site):
    ident = reg.add_identity(ann, "domain", "moved.example")
    port = site.server_address[1]
    site.pages[WELL_KNOWN_PATH] = page(b"", status=302, Location=f"http://localhost:{port}/x")
    site.pages["/x"] = page(challenge(SECRET, ident, "moved.example").encode())
    with httpx.Client(follow_redirects=True) as client:
        result = verify_domain(
            reg, ident, secret=SECRET, method="well-known", base_url=site.base, http_client=client
        )
        assert not client.is_closed  # the caller's client is the caller's to close
    assert result.state == "failed" and "another host" in result.detail


# --- through the HTTP API --------------------------------------------------------------------


def test_the_api_gives_the_challenge_and_verifies_against_a_local_nameserver(reg, nameserver):
    """A contributor asks for the challenge of their domain, publishes it (here: in the local
    nameserver), asks the registry to verify, and the identity reads verified; another
    contributor cannot see or verify it; without a configured secret the routes answer 503."""
    from fastapi.testclient import TestClient

    from datalever.registry.api import DomainProofs, create_app

    ann, bob = reg.create_account("ann"), reg.create_account("bob")
    ident = reg.add_identity(ann, "domain", "ann.example")
    mine = {"Authorization": f"Bearer {reg.issue_token('contributor', ann)}"}
    theirs = {"Authorization": f"Bearer {reg.issue_token('contributor', bob)}"}
    proofs = DomainProofs(SECRET, nameserver.resolver(), 1.0)
    http = TestClient(create_app(reg, rate_limit=None, domain_proofs=proofs))
    asked = http.get(f"/v1/identities/{ident}/challenge", headers=mine)
    assert asked.status_code == 200
    assert asked.json()["txt_name"] == txt_name("ann.example")
    assert asked.json()["txt_value"] == proof(ident, "ann.example")
    assert http.get(f"/v1/identities/{ident}/challenge", headers=theirs).status_code == 404
    assert http.post(f"/v1/identities/{ident}/verify", headers=theirs, json={}).status_code == 404
    failed = http.post(f"/v1/identities/{ident}/verify", headers=mine, json={"method": "dns-txt"})
    assert failed.status_code == 200 and failed.json()["state"] == "failed"
    nameserver.records[txt_name("ann.example")] = [[asked.json()["txt_value"]]]
    done = http.post(f"/v1/identities/{ident}/verify", headers=mine, json={"method": "dns-txt"})
    assert done.status_code == 200 and done.json()["state"] == "verified"
    assert reg.identity(ident)["state"] == "verified"
    assert recorded(reg, ident) == [("dns-txt", "failed"), ("dns-txt", "verified")]
    unset = TestClient(create_app(reg, rate_limit=None))
    refused = unset.post(f"/v1/identities/{ident}/verify", headers=mine, json={})
    assert refused.status_code == 503 and "DATALEVER_REGISTRY_SECRET" in refused.json()["fix"]
