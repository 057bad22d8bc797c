"""The consent signal parsers: worked examples on real-format fixtures, the reading order,
the purpose chain, fetching from a real local HTTP server, and fuzzing every parser."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalever.errors import DataleverError
from datalever.registry.signals import (
    AI_TRAINING_CRAWLERS,
    ORDER,
    SignalDecision,
    SignalSources,
    Statement,
    aitxt_statements,
    c2pa_file_statements,
    fetch_sources,
    header_statements,
    html_statements,
    manifest_statements,
    read_signals,
    resolve,
    robots_statements,
    tdmrep_header_statements,
    well_known_statements,
    xmp_file_statements,
    xmp_statements,
)
from datalever.registry.signals.c2pa import embedded_statements
from datalever.registry.signals.patterns import matches
from datalever.registry.signals.usage import parse_dictionary
from datalever.registry.signals.xmp import packet_statements

FIXTURES = Path(__file__).parent / "fixtures" / "signals"
SITE = FIXTURES / "site"
FILES = FIXTURES / "files"
ROBOTS = (SITE / "robots.txt").read_text()
AITXT = (SITE / "ai.txt").read_text()
TDMREP = (SITE / ".well-known" / "tdmrep.json").read_text()
ORIGIN = "https://example.org"
HAS_SDK = importlib.util.find_spec("c2pa") is not None
needs_sdk = pytest.mark.skipif(not HAS_SDK, reason="reading C2PA files needs c2pa-python")


def only(statements: tuple[Statement, ...]) -> Statement:
    assert len(statements) == 1, statements
    return statements[0]


def answer(statements: tuple[Statement, ...], purpose: str) -> tuple[str, str] | None:
    found = resolve(statements, purpose)
    return None if found is None else (found.outcome, found.rule)


# --- robots.txt --------------------------------------------------------------------------


def test_robots_named_ai_crawler_reserves_ai_training():
    found = robots_statements(ROBOTS, f"{ORIGIN}/images/cat.jpg")
    assert found[0] == Statement(
        "robots.txt", "train-ai", "reserved", "robots.txt: Disallow: /images/ for GPTBot"
    )
    blocked = {s.rule.rsplit(" ", 1)[1] for s in found if s.purpose == "train-ai"}
    assert blocked == {"GPTBot", "CCBot", "Google-Extended"}
    assert resolve(found, "train-genai").outcome == "reserved"
    # blocking AI crawlers says nothing of search; the site-wide search=y does
    assert resolve(found, "search").rule == 'robots.txt: "search=y" (line 6, for *)'


def test_robots_own_crawler_blocked_reserves_everything():
    found = only(robots_statements(ROBOTS, f"{ORIGIN}/private/notes.html"))
    assert (found.purpose, found.outcome) == ("tdm", "reserved")
    assert found.rule == "robots.txt: Disallow: /private/ for *"
    text = "User-agent: mycrawler\nDisallow: /\n"
    assert robots_statements(text, f"{ORIGIN}/a", agent="mycrawler")[0].purpose == "tdm"
    assert robots_statements(text, f"{ORIGIN}/a") == ()  # another crawler's group


def test_robots_star_group_is_not_an_ai_reservation():
    text = "User-agent: datalever\nAllow: /\n\nUser-agent: *\nDisallow: /\n"
    assert robots_statements(text, f"{ORIGIN}/a") == ()
    text += "\nUser-agent: ClaudeBot\nDisallow: /\n"
    assert only(robots_statements(text, f"{ORIGIN}/a")).rule.endswith("for ClaudeBot")


def test_robots_content_usage_longest_path_wins():
    site_wide = only(robots_statements(ROBOTS, f"{ORIGIN}/about"))
    assert (site_wide.purpose, site_wide.outcome) == ("search", "allowed")
    articles = robots_statements(ROBOTS, f"{ORIGIN}/articles/2026/story.html")
    assert answer(articles, "train-genai") == (
        "reserved",
        'robots.txt: "train-ai=n" (line 7, path /articles/, for *)',
    )
    assert answer(articles, "search")[0] == "allowed"
    free = robots_statements(ROBOTS, f"{ORIGIN}/articles/free/story.html")
    assert answer(free, "train-ai") == (
        "allowed",
        'robots.txt: "train-ai=y" (line 8, path /articles/free/, for *)',
    )


def test_robots_content_usage_values():
    def usage(value: str) -> tuple[Statement, ...]:
        return robots_statements(f"User-agent: *\nContent-Usage: {value}\n", f"{ORIGIN}/x")

    assert only(usage("train-ai=maybe")).rule.endswith("not y or n")
    assert only(usage("train-ai")).outcome == "reserved"
    assert usage("bots=n, foo=y") == ()  # keys outside the vocabulary are ignored
    bad = only(usage("Train-AI=n"))  # an upper-case key is not a dictionary key
    assert bad.malformed and bad.purpose == "tdm"
    assert only(usage("tdm=n;exp=1")).outcome == "reserved"  # parameters ignored


def test_robots_agent_group_for_content_usage():
    text = (
        "User-agent: *\nContent-Usage: train-ai=n\n\n"
        "User-agent: datalever\nContent-Usage: train-ai=y\n"
    )
    assert only(robots_statements(text, f"{ORIGIN}/x")).outcome == "allowed"
    assert only(robots_statements(text, f"{ORIGIN}/x", agent="other")).outcome == "reserved"


def test_robots_unreadable_and_huge():
    bad = only(robots_statements(b"\xff\xfe\x00garbage\x80", f"{ORIGIN}/x"))
    assert bad.malformed and bad.outcome == "reserved" and "UTF-8" in bad.rule
    huge = "User-agent: *\nDisallow: /" + "a" * 2_000_000 + "\n"
    assert robots_statements(huge, f"{ORIGIN}/x") == ()  # cut at 512 KiB, as RFC 9309 allows


def test_ai_training_agents_is_a_documented_tuple():
    assert isinstance(AI_TRAINING_CRAWLERS, tuple)
    assert {"GPTBot", "CCBot", "Google-Extended", "ClaudeBot", "anthropic-ai"} <= set(
        AI_TRAINING_CRAWLERS
    )


# --- headers -----------------------------------------------------------------------------


def test_x_robots_tag_every_instance_case_insensitive():
    headers = [("X-Robots-Tag", "nofollow"), ("x-ROBOTS-tag", "NoAI"), ("Server", "noai")]
    found = only(header_statements(headers, agent="datalever"))
    assert found == Statement(
        "x-robots-tag", "train-ai", "reserved", 'x-robots-tag: "NoAI" (header 2)'
    )


def test_x_robots_tag_agent_scopes():
    def read(value: str) -> tuple[Statement, ...]:
        return header_statements([("X-Robots-Tag", value)], agent="datalever")

    assert read("otherbot: noai") == ()
    assert only(read("datalever: noai")).rule == 'x-robots-tag: "datalever: noai" (header 1)'
    assert only(read("googlebot: noindex, datalever: noml")).rule.startswith(
        'x-robots-tag: "datalever: noml"'
    )
    assert read("unavailable_after: 25 Jun 2010 15:00:00 PST") == ()
    assert only(read("noindex")).purpose == "search"


def test_noimageai_only_for_images():
    headers = [("Content-Type", "text/html"), ("X-Robots-Tag", "noimageai")]
    assert header_statements(headers, agent="d") == ()
    image = [("Content-Type", "image/png"), ("X-Robots-Tag", "noimageai")]
    assert only(header_statements(image, agent="d")).purpose == "train-ai"
    untyped = [("X-Robots-Tag", "noimageai")]  # no type: a reservation is kept
    assert only(header_statements(untyped, agent="d")).outcome == "reserved"
    assert header_statements(untyped, agent="d", is_image=False) == ()


def test_content_usage_header():
    headers = {"Content-Usage": "train-ai=n, search=y"}
    found = header_statements(headers, agent="d")
    assert answer(found, "train-genai") == (
        "reserved",
        'content-usage: "train-ai=n" (header 1)',
    )
    assert answer(found, "search")[0] == "allowed"
    assert answer(found, "tdm") is None
    broken = only(header_statements({"Content-Usage": "train-ai=n,, =y"}, agent="d"))
    assert broken.malformed and broken.outcome == "reserved"


def test_structured_dictionary():
    assert parse_dictionary('a=y, b;p="x,y", c=n') == [("a", "y"), ("b", None), ("c", "n")]
    for bad in ('a="open', "A=y", "a=", "a=y,,b=n"):
        with pytest.raises(ValueError):
            parse_dictionary(bad)


# --- TDMRep ------------------------------------------------------------------------------


def test_tdmrep_well_known_locations():
    found = only(well_known_statements(TDMREP, f"{ORIGIN}/images/2026/cat.jpg"))
    assert found.outcome == "reserved" and found.purpose == "tdm"
    assert found.rule == (
        'tdmrep.json: location "/images/*" tdm-reservation 1, '
        'tdm-policy "https://example.org/policies/tdm-policy.json"'
    )
    free = only(well_known_statements(TDMREP.encode(), f"{ORIGIN}/articles/free/a.html"))
    assert free.outcome == "allowed"
    assert well_known_statements(TDMREP, f"{ORIGIN}/about") == ()


def test_tdmrep_first_matching_location_answers():
    text = json.dumps(
        [
            {"location": "/a/b/*", "tdm-reservation": 0},
            {"location": "/a/*", "tdm-reservation": 1},
        ]
    )
    assert only(well_known_statements(text, f"{ORIGIN}/a/b/c")).outcome == "allowed"
    assert only(well_known_statements(text, f"{ORIGIN}/a/c")).outcome == "reserved"


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"location": "/", "tdm-reservation": 1}',
        '[{"location": 5, "tdm-reservation": 0}]',
        '[{"location": "/", "tdm-reservation": 0, "tdm-policy": 7}]',
        "[1, 2]",
        "[" * 100_000,
    ],
)
def test_tdmrep_malformed_file_reserves(text):
    found = only(well_known_statements(text, f"{ORIGIN}/x"))
    assert found.malformed and found.outcome == "reserved"
    assert found.rule.startswith("tdmrep.json: unreadable")


@pytest.mark.parametrize("value", ['"1"', '"0"', "true", "1.0", "2", "null"])
def test_tdmrep_wrong_value_types_reserve(value):
    text = f'[{{"location": "/", "tdm-reservation": {value}}}]'
    found = only(well_known_statements(text, f"{ORIGIN}/x"))
    assert found.outcome == "reserved" and found.rule.endswith("not 0 or 1")


def test_tdmrep_headers():
    found = only(
        tdmrep_header_statements(
            [("TDM-Reservation", "1"), ("tdm-policy", "https://example.org/p.json")]
        )
    )
    assert found.rule == (
        'tdm-reservation: "1" (header 1), tdm-policy "https://example.org/p.json"'
    )
    assert only(tdmrep_header_statements({"tdm-reservation": "0"})).outcome == "allowed"
    assert only(tdmrep_header_statements({"tdm-reservation": "yes"})).outcome == "reserved"


def test_tdmrep_html_meta():
    found = only(html_statements((SITE / "page.html").read_bytes()))
    assert found.signal == "html meta" and found.outcome == "reserved"
    assert found.rule.startswith('html meta: <meta name="tdm-reservation" content="1">')
    assert "tdm-policy" in found.rule
    upper = '<META NAME="TDM-Reservation" CONTENT="0"/>'
    assert only(html_statements(upper)).outcome == "allowed"
    assert html_statements("<p>no meta</p><meta name=robots content=noai>") == ()


def test_tdmrep_places_disagree_reservation_wins():
    sources = SignalSources(
        url=f"{ORIGIN}/articles/free/a.html",
        headers=(("tdm-reservation", "0"),),
        tdmrep_json=TDMREP,
        body='<meta name="tdm-reservation" content="1">',
    )
    decision = read_signals(sources, "tdm")
    assert (decision.outcome, decision.signal) == ("reserved", "html meta")


# --- ai.txt ------------------------------------------------------------------------------


def test_aitxt_file_types_and_paths():
    jpg = only(aitxt_statements(AITXT, f"{ORIGIN}/photos/beach.JPG.jpg", agent="d"))
    assert jpg == Statement("ai.txt", "train-ai", "reserved", "ai.txt: Disallow: *.jpg for *")
    free = only(aitxt_statements(AITXT, f"{ORIGIN}/images/free/beach.jpg", agent="d"))
    assert free.outcome == "allowed" and free.rule == "ai.txt: Allow: /images/free/ for *"
    assert aitxt_statements(AITXT, f"{ORIGIN}/notes.txt", agent="d") == ()
    assert aitxt_statements(AITXT, f"{ORIGIN}/beach.jpg.html", agent="d") == ()


def test_aitxt_ties_go_to_disallow_and_groups():
    text = "User-Agent: *\nAllow: *.png\nDisallow: *.png\n\nUser-Agent: datalever\nAllow: /\n"
    assert only(aitxt_statements(text, f"{ORIGIN}/a.png", agent="other")).outcome == "reserved"
    assert only(aitxt_statements(text, f"{ORIGIN}/a.png", agent="datalever")).outcome == ("allowed")


def test_patterns():
    assert matches("/images/*", "/images/a/b.jpg")
    assert matches("*.jpg", "/a/b.jpg") and not matches("*.jpg", "/a/b.jpg.html")
    assert matches(".pdf", "/x.pdf")
    assert matches("/a*b$", "/aXXb") and not matches("/a*b$", "/aXXbc")
    assert not matches("", "/") and not matches("/" + "*a" * 5000, "/a")
    start = time.perf_counter()
    assert not matches("/" + "*a" * 900 + "b", "/" + "a" * 100_000)
    assert time.perf_counter() - start < 2.0


# --- C2PA / CAWG -------------------------------------------------------------------------


@needs_sdk
def test_c2pa_signed_jpeg():
    found = c2pa_file_statements(FILES / "c2pa_signed.jpg")
    assert answer(found, "train-genai") == (
        "reserved",
        'c2pa: c2pa.training-mining c2pa.ai_generative_training use "notAllowed"',
    )
    assert answer(found, "train-ai")[0] == "allowed"
    assert answer(found, "ai-use")[0] == "allowed"
    assert answer(found, "search") == (
        "allowed",
        'c2pa: c2pa.training-mining c2pa.data_mining use "allowed"',
    )


@needs_sdk
def test_cawg_signed_png_constrained_reserves():
    found = c2pa_file_statements(FILES / "cawg_signed.png")
    outcome, rule = answer(found, "train-genai")
    assert outcome == "reserved"
    assert rule.startswith('c2pa: cawg.training-mining cawg.ai_generative_training use "constr')
    assert "licence at https://example.org/licence" in rule
    assert answer(found, "train-ai")[0] == "allowed"


@needs_sdk
def test_c2pa_tampered_file_reserves():
    found = only(c2pa_file_statements(FILES / "c2pa_tampered.jpg"))
    assert found.malformed and "assertion.dataHash.mismatch" in found.rule


@needs_sdk
def test_c2pa_sidecar_and_plain_file():
    found = only(c2pa_file_statements(FILES / "c2pa_sidecar.jpg"))
    assert found.outcome == "reserved" and found.rule.endswith("in c2pa_sidecar.c2pa")
    assert c2pa_file_statements(FILES / "plain.jpg") == ()


def test_c2pa_manifest_store_json():
    store = json.loads((FILES / "c2pa_store.json").read_text())
    assert [v["code"] for v in store["validation_status"]] == ["signingCredential.untrusted"]
    assert answer(manifest_statements(json.dumps(store)), "train-genai")[0] == "reserved"
    active = store["manifests"][store["active_manifest"]]
    for assertion in active["assertions"]:
        if assertion["label"] == "c2pa.training-mining":
            assertion["label"] = "c2pa.training-mining.v2__1"
            assertion["data"]["entries"]["c2pa.ai_training"]["use"] = "maybe"
    found = manifest_statements(store)
    assert answer(found, "train-ai")[1].endswith('use "maybe", an unknown value')


@pytest.mark.parametrize(
    "store",
    [
        "[]",
        "{}",
        '{"active_manifest": "m", "manifests": {"m": 3}}',
        '{"active_manifest": "m", "manifests": {"m": {"assertions": [{"label": '
        '"cawg.training-mining", "data": {"entries": []}}]}}}',
        '{"validation_state": "Invalid", "active_manifest": "m", "manifests": {}}',
    ],
)
def test_c2pa_malformed_store_reserves(store):
    found = only(manifest_statements(store))
    assert found.malformed and found.outcome == "reserved"


@needs_sdk
def test_c2pa_truncated_file_and_mere_mentions():
    signed = (FILES / "c2pa_signed.jpg").read_bytes()
    cut = only(embedded_statements(signed[: len(signed) // 2], "image/jpeg"))
    assert cut.malformed and cut.outcome == "reserved"
    page = b"<p>C2PA manifests live in JUMBF boxes: jumb, jumd, c2pa.</p>"
    assert embedded_statements(page, "text/html") == ()


def test_c2pa_without_sdk(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # as if c2pa-python were not installed
    assert c2pa_file_statements(FILES / "plain.jpg") == ()  # no manifest, no SDK needed
    with pytest.raises(DataleverError) as raised:
        c2pa_file_statements(FILES / "c2pa_signed.jpg")
    assert raised.value.fix == "pip install c2pa-python"


# --- XMP ---------------------------------------------------------------------------------


def test_xmp_in_jpeg():
    found = only(xmp_file_statements(FILES / "xmp_aiml.jpg"))
    assert found == Statement(
        "xmp",
        "train-ai",
        "reserved",
        'xmp: plus:DataMining "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"'
        " (packet 1)",
    )
    assert resolve((found,), "train-genai") == found
    assert resolve((found,), "ai-use") is None


def test_xmp_in_png_except_search():
    found = xmp_file_statements(FILES / "xmp_search.png")
    assert answer(found, "search")[0] == "allowed"
    assert answer(found, "train-ai")[0] == "reserved"


def test_xmp_sidecar():
    found = only(xmp_file_statements(FILES / "sidecar.jpg"))
    assert (found.purpose, found.outcome) == ("train-genai", "reserved")
    assert found.rule.endswith("in sidecar.xmp")
    assert resolve((found,), "train-ai") is None  # a narrower reservation
    assert only(xmp_file_statements(FILES / "sidecar.xmp")).purpose == "train-genai"


def test_xmp_bomb_and_broken_packets():
    bomb = only(xmp_file_statements(FILES / "bomb.xmp"))
    assert bomb.malformed and "EntitiesForbidden" in bomb.rule
    embedded = b"\xff\xd8junk" + (FILES / "bomb.xmp").read_bytes() + b"<x:xmpmeta>&lol9;"
    assert all(s.malformed for s in xmp_statements(embedded))
    assert only(xmp_statements(b"..<x:xmpmeta xmlns:x='adobe:ns:meta/'><never")).malformed


def test_xmp_values():
    def packet(value: str) -> bytes:
        return (
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
            b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:plus="http://ns.useplus.org/ldf/'
            b'xmp/1.0/"><plus:DataMining>' + value.encode() + b"</plus:DataMining>"
            b"</rdf:Description></rdf:RDF></x:xmpmeta>"
        )

    vocab = "http://ns.useplus.org/ldf/vocab/"
    assert packet_statements(packet(vocab + "DMI-UNSPECIFIED")) == ()
    assert only(packet_statements(packet(vocab + "DMI-PROHIBITED"))).purpose == "tdm"
    see = only(packet_statements(packet(vocab + "DMI-PROHIBITED-SEECONSTRAINT")))
    assert see.outcome == "reserved"
    odd = only(packet_statements(packet("maybe later")))
    assert odd.outcome == "reserved" and odd.rule.endswith("an unknown value")


# --- combining ---------------------------------------------------------------------------


def test_no_signal_is_allowed():
    decision = read_signals(SignalSources(url=f"{ORIGIN}/a"), "train-ai")
    assert decision == SignalDecision("train-ai", "allowed", "none", "no signal", ())


def test_later_signals_override_earlier():
    sources = SignalSources(
        url=f"{ORIGIN}/images/cat.jpg",
        robots_txt=ROBOTS,
        headers=(("Content-Usage", "train-ai=y"),),
    )
    decision = read_signals(sources, "train-ai")
    assert (decision.outcome, decision.signal) == ("allowed", "content-usage")
    assert [r.signal for r in decision.reasons] == ["robots.txt", "content-usage"]
    assert decision.reasons[0].outcome == "reserved"
    later = SignalSources(
        url=f"{ORIGIN}/images/cat.jpg",
        robots_txt=ROBOTS,
        headers=(("Content-Usage", "train-ai=y"),),
        ai_txt=AITXT,
    )
    decision = read_signals(later, "train-ai")
    assert (decision.outcome, decision.rule) == ("reserved", "ai.txt: Disallow: *.jpg for *")


@needs_sdk
def test_file_signals_come_last():
    sources = SignalSources(
        url=f"{ORIGIN}/images/photo.jpg",
        headers=(("X-Robots-Tag", "noai"),),
        path=FILES / "xmp_allowed.jpg",
    )
    decision = read_signals(sources, "train-genai")
    assert (decision.outcome, decision.signal) == ("allowed", "xmp")
    c2pa_then_xmp = read_signals(SignalSources(path=FILES / "c2pa_signed.jpg"), "train-genai")
    assert c2pa_then_xmp.signal == "c2pa" and c2pa_then_xmp.outcome == "reserved"


def test_malformed_later_signal_reserves():
    sources = SignalSources(
        url=f"{ORIGIN}/a",
        headers=(("Content-Usage", "train-ai=y"),),
        tdmrep_json="<html>not json</html>",
    )
    decision = read_signals(sources, "train-ai")
    assert decision.outcome == "reserved" and decision.signal == "tdmrep.json"
    assert decision.rule.startswith("tdmrep.json: unreadable (not JSON")


def test_purpose_chain():
    sources = SignalSources(headers=(("Content-Usage", "train-ai=n"),))
    assert read_signals(sources, "train-genai").outcome == "reserved"
    assert read_signals(sources, "train-ai").outcome == "reserved"
    for purpose in ("tdm", "search", "ai-use"):
        assert read_signals(sources, purpose).rule == "no signal"
    narrow = SignalSources(headers=(("Content-Usage", "train-genai=n, train-ai=y"),))
    assert read_signals(narrow, "train-genai").outcome == "reserved"
    assert read_signals(narrow, "train-ai").outcome == "allowed"
    general = SignalSources(headers=(("Content-Usage", "tdm=n, search=y"),))
    assert read_signals(general, "ai-use").outcome == "reserved"
    assert read_signals(general, "search").outcome == "allowed"


def test_order_is_documented():
    assert ORDER == ("robots.txt", "headers", "tdmrep", "ai.txt", "c2pa", "xmp")


def test_caller_mistakes_are_datalever_errors(tmp_path):
    with pytest.raises(DataleverError, match="Unknown purpose"):
        read_signals(SignalSources(), "training")
    with pytest.raises(DataleverError, match="without the work's URL"):
        read_signals(SignalSources(robots_txt=ROBOTS), "tdm")
    with pytest.raises(DataleverError, match="does not exist"):
        read_signals(SignalSources(path=tmp_path / "gone.jpg"), "tdm")


def test_unreachable_robots_reserves():
    sources = SignalSources(url=f"{ORIGIN}/a", robots_unreachable="HTTP 503")
    decision = read_signals(sources, "search")
    assert decision.outcome == "reserved" and "RFC 9309" in decision.rule


# --- fetching from a real server ---------------------------------------------------------


Override = tuple[int, list[tuple[str, str]], bytes, float]


@contextmanager
def serve(site: Path, overrides: dict[str, Override] | None = None) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``site`` with the headers in its
    headers.json; ``overrides`` answer chosen paths with (status, headers, body, delay)."""
    table = (
        json.loads((site / "headers.json").read_text())
        if site.joinpath("headers.json").is_file()
        else {}
    )
    chosen = overrides or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (the stdlib's name)
            path = urlsplit(self.path).path
            if path in chosen:
                status, headers, body, delay = chosen[path]
            else:
                file = (site / path.lstrip("/")).resolve()
                inside = file.is_relative_to(site.resolve()) and file.is_file()
                status, delay = (200, 0.0) if inside else (404, 0.0)
                body = file.read_bytes() if inside else b"not found"
                headers = [tuple(h) for h in table.get(path, [])] if inside else []
            time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


def test_fetch_page_from_site(client):
    with serve(SITE) as base:
        sources = fetch_sources(f"{base}/page.html", client, timeout=5)
    assert sources.robots_txt == ROBOTS.encode() and sources.ai_txt == AITXT.encode()
    assert ("x-robots-tag", "noai, noimageai") in sources.headers
    decision = read_signals(sources, "train-genai")
    assert (decision.outcome, decision.signal) == ("reserved", "html meta")
    assert [r.rule for r in decision.reasons[:1]] == ['x-robots-tag: "noai" (header 2)']
    search = read_signals(sources, "search")
    assert search.outcome == "reserved"  # the tdm reservation covers search too


def test_fetch_photo_every_signal_in_order(client):
    with serve(SITE) as base:
        sources = fetch_sources(f"{base}/images/photo.jpg", client, timeout=5)
    decision = read_signals(sources, "train-ai")
    assert [r.signal for r in decision.reasons] == [
        "robots.txt",
        "x-robots-tag",
        "tdmrep.json",
        "ai.txt",
        "xmp",
    ]
    assert [r.outcome for r in decision.reasons] == ["reserved"] * 4 + ["allowed"]
    assert (decision.outcome, decision.signal) == ("allowed", "xmp")
    assert decision.reasons[2].rule.startswith('tdmrep.json: location "/images/*"')


def test_fetch_free_article(client):
    with serve(SITE) as base:
        sources = fetch_sources(f"{base}/articles/free/open.html", client, timeout=5)
    decision = read_signals(sources, "train-genai")
    assert decision.outcome == "allowed" and decision.signal == "ai.txt"
    assert all(r.outcome == "allowed" for r in decision.reasons)


def test_fetch_missing_site_files_are_no_signal(client, tmp_path):
    (tmp_path / "work.txt").write_text("plain text\n")
    with serve(tmp_path) as base:
        sources = fetch_sources(f"{base}/work.txt", client, timeout=5)
    assert (sources.robots_txt, sources.tdmrep_json, sources.ai_txt) == (None, None, None)
    assert read_signals(sources, "train-genai").rule == "no signal"


def test_fetch_errors_and_malformed_files(client, tmp_path):
    (tmp_path / "work.txt").write_text("plain text\n")
    overrides: dict[str, Override] = {
        "/robots.txt": (503, [], b"busy", 0.0),
        "/.well-known/tdmrep.json": (200, [("Content-Type", "application/json")], b"\x00{", 0),
        "/ai.txt": (200, [], b"User-Agent: *\nDisallow: /\n", 3.0),  # slower than the timeout
    }
    with serve(tmp_path, overrides) as base:
        sources = fetch_sources(f"{base}/work.txt", client, timeout=0.5)
    assert sources.robots_unreachable == "HTTP 503" and sources.ai_txt is None
    found = read_signals(sources, "search")
    assert [r.signal for r in found.reasons] == ["robots.txt", "tdmrep.json"]
    assert found.outcome == "reserved" and found.rule == "tdmrep.json: unreadable (binary content)"


def test_fetch_refuses_bad_urls(client):
    with pytest.raises(DataleverError, match="not an http"):
        fetch_sources("ftp://example.org/a", client)
    with serve(SITE) as base:
        pass  # the port is now closed
    with pytest.raises(DataleverError, match="Cannot fetch"):
        fetch_sources(f"{base}/page.html", client, timeout=2)


# --- fuzzing -----------------------------------------------------------------------------

MANIFEST_BOX = (
    b"\x00\x00\x80\x00jumb\x00\x00\x00\x1ejumdc2pa\x00\x11\x00\x10\x80\x00\x00\xaa\x008\x9bq"
)

_text = st.text(max_size=400)
_blob = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda a, b: a + (MANIFEST_BOX if HAS_SDK else b"jumb") + b,
        st.binary(max_size=50),
        st.binary(max_size=50),
    ),
    st.builds(
        lambda a, b: a + b"<x:xmpmeta>" + b.encode() + b"</x:xmpmeta>",
        st.binary(max_size=40),
        _text,
    ),
)
_raw = st.one_of(_text, _blob)
_headers = st.lists(
    st.tuples(
        st.sampled_from(
            ["X-Robots-Tag", "content-usage", "tdm-reservation", "TDM-Policy", "Content-Type", "x"]
        ),
        _text,
    ),
    max_size=6,
)
_url = st.one_of(st.just(f"{ORIGIN}/images/a.jpg"), _text.map(lambda t: f"{ORIGIN}/{t}"))
_fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(data=_raw, url=_url, headers=_headers)
def test_fuzz_every_parser(data, url, headers):
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    text = data if isinstance(data, str) else raw.decode("latin-1")
    results = [
        robots_statements(data, url),
        header_statements(headers, agent="datalever"),
        tdmrep_header_statements(headers),
        well_known_statements(data, url),
        html_statements(data),
        aitxt_statements(data, url, agent="datalever"),
        manifest_statements(text),
        xmp_statements(raw),
        packet_statements(raw),
        embedded_statements(raw),
        embedded_statements(raw, "image/jpeg"),
    ]
    for statements in results:
        assert isinstance(statements, tuple)
        assert all(isinstance(s, Statement) for s in statements)
        assert all(s.outcome in ("allowed", "reserved") for s in statements)


@_fuzz
@given(
    robots=st.none() | _raw,
    headers=_headers,
    body=st.none() | _raw,
    tdmrep=st.none() | _raw,
    aitxt=st.none() | _raw,
    url=_url,
    purpose=st.sampled_from(["tdm", "train-ai", "train-genai", "ai-use", "search"]),
)
def test_fuzz_read_signals(robots, headers, body, tdmrep, aitxt, url, purpose):
    sources = SignalSources(
        url=url, robots_txt=robots, headers=headers, body=body, tdmrep_json=tdmrep, ai_txt=aitxt
    )
    decision = read_signals(sources, purpose)
    assert decision.outcome in ("allowed", "reserved") and decision.rule
    if decision.reasons:
        assert decision.reasons[-1].rule == decision.rule


@_fuzz
@given(st.binary(min_size=0, max_size=2000))
def test_fuzz_files(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    for name in ("work.jpg", "work.png", "work.xmp"):
        path = folder / name
        path.write_bytes(data)
        assert read_signals(SignalSources(path=path), "train-genai").outcome in (
            "allowed",
            "reserved",
        )
