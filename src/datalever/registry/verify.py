"""Proving that an account controls a domain it claims, so a domain's works are only
governed by whoever runs the domain.

The registry gives each domain identity a challenge that nobody can guess: an HMAC-SHA256
of the identity id and the domain under a secret only the registry holds (no table stores
it, so a leaked database leaks no challenge). The owner publishes it in one of two places:

* ``dns-txt``: a TXT record at ``_datalever-challenge.<domain>`` whose value is
  ``datalever-verification=<challenge>``;
* ``well-known``: a file at ``https://<domain>/.well-known/datalever-verification.txt``
  with a line that is the challenge (or the same ``datalever-verification=<challenge>``).

``verify_domain`` looks for the proof and records the outcome as an event: ``verified`` when
found, ``failed`` (with the reason) when not. Anything the network does wrong (no such name,
no answer, a timeout, an HTTP error, a redirect to another host, a body too large) is a
``failed`` outcome, never an exception; a caller's mistake (an unknown identity, one that is
not a domain, a name that is not a domain name, a missing secret) is a ``DataleverError``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin, urlsplit

from datalever.errors import DataleverError

if TYPE_CHECKING:
    import dns.resolver
    import httpx

    from datalever.registry.registry import Registry

Method = Literal["dns-txt", "well-known"]
METHODS: tuple[str, ...] = ("dns-txt", "well-known")
SECRET_ENV = "DATALEVER_REGISTRY_SECRET"
MIN_SECRET_BYTES = 16
TXT_LABEL = "_datalever-challenge"
TXT_PREFIX = "datalever-verification="
WELL_KNOWN_PATH = "/.well-known/datalever-verification.txt"
MAX_PROOF_BYTES = 64 * 1024  # a proof is one short line; anything larger is refused
MAX_TXT_RECORDS = 100
MAX_REDIRECTS = 5
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class VerificationResult:
    """The recorded outcome of one verification and why it came out so."""

    state: Literal["verified", "failed"]
    method: str
    detail: str
    event_id: int


@dataclass(frozen=True)
class Challenge:
    """What a domain's owner must publish, by either method."""

    domain: str
    value: str
    txt_name: str
    txt_value: str
    well_known_url: str


def load_secret(path: str | Path | None = None) -> bytes:
    """The registry's verification secret: from the file ``path`` if given, otherwise from
    the environment variable ``DATALEVER_REGISTRY_SECRET``. Changing it changes every
    challenge, so domains verified before must publish new ones to verify again."""
    if path is not None:
        try:
            raw = Path(path).read_bytes().strip()
        except OSError as e:
            raise DataleverError(
                f"Cannot read the registry secret file {str(path)[:200]!r}: {e.strerror}.",
                "check the path and its permissions.",
            ) from None
    else:
        raw = os.environ.get(SECRET_ENV, "").strip().encode("utf-8", "surrogatepass")
    return _check_secret(raw)


def _check_secret(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    if not isinstance(raw, bytes) or len(raw) < MIN_SECRET_BYTES:
        raise DataleverError(
            f"The registry secret is missing or shorter than {MIN_SECRET_BYTES} bytes, so "
            "verification challenges could be guessed.",
            f"set {SECRET_ENV} (or give a secret file) to a long random value, such as the "
            "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
        )
    return raw


def normalize_domain(value: str) -> str:
    """``value`` as a lower-case ASCII (IDNA) host name, or a ``DataleverError``: a bare
    name of two or more labels, with no scheme, port, path or IP address, within DNS
    length limits. Checked before any lookup, so nothing odd ever reaches a resolver."""
    import dns.exception
    import dns.name

    def refuse(why: str) -> DataleverError:
        return DataleverError(
            f"{str(value)[:120]!r} is not a domain name: {why}.",
            "give a bare domain such as example.org (no https://, no path, no port).",
        )

    if not isinstance(value, str):
        raise refuse("it is not text")
    text = value.strip().lower().removesuffix(".")
    if not text:
        raise refuse("it is blank")
    if len(text) > 1000:
        raise refuse("it is far too long")
    if any(c in text for c in "/:@?#\\ \t\r\n") or any(ord(c) < 32 for c in text):
        raise refuse("it has a scheme, path, port, space or other character a host lacks")
    try:
        name = dns.name.from_unicode(text, idna_codec=dns.name.IDNA_DEFAULT)
        ascii_name = name.to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError, ValueError):
        raise refuse("it is not a valid international domain name (IDNA)") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253:
        raise refuse("it is longer than 253 characters")
    if len(labels) < 2:
        raise refuse("it has a single label, not a public domain")
    for label in labels:
        if not _LABEL.match(label):
            raise refuse(f"the label {label[:70]!r} is not 1-63 letters, digits or inner hyphens")
    if labels[-1].isdigit():
        raise refuse("it is an IP address or ends in a numeric label")
    return ascii_name


def challenge(secret: str | bytes, identity_id: int, domain: str) -> str:
    """The value the owner of ``domain`` must publish for identity ``identity_id``: a
    keyed hash, different for every identity, domain and secret, that only the registry
    can compute."""
    key = _check_secret(secret)
    message = f"{int(identity_id)}:{normalize_domain(domain)}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def challenge_for(registry: Registry, identity_id: int, *, secret: str | bytes) -> Challenge:
    """What the owner of a domain identity must publish to verify it."""
    identity = _domain_identity(registry, identity_id)
    domain = normalize_domain(identity["value"])
    value = challenge(secret, identity_id, domain)
    return Challenge(
        domain=domain,
        value=value,
        txt_name=f"{TXT_LABEL}.{domain}",
        txt_value=f"{TXT_PREFIX}{value}",
        well_known_url=f"https://{domain}{WELL_KNOWN_PATH}",
    )


def verify_domain(
    registry: Registry,
    identity_id: int,
    *,
    secret: str | bytes,
    method: str = "dns-txt",
    resolver: dns.resolver.Resolver | None = None,
    http_client: httpx.Client | None = None,
    timeout: float = 5.0,
    base_url: str | None = None,
) -> VerificationResult:
    """Look for the proof of a domain identity by ``method`` and record the outcome.

    ``resolver`` defaults to the system's DNS configuration; ``http_client`` to a fresh
    client that checks TLS certificates. ``base_url`` replaces ``https://<domain>`` as the
    place the well-known file is fetched from, and exists for tests against local servers:
    in production leave it unset, so the proof always comes from the domain over HTTPS.
    Redirects are followed only within the same scheme, host and port, and ``timeout``
    bounds the whole lookup."""
    if method not in METHODS:
        raise DataleverError(
            f"Unknown verification method {str(method)[:40]!r}.",
            f"use one of {', '.join(METHODS)}.",
        )
    if not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise DataleverError(
            f"The timeout must be between 0 and 60 seconds, not {timeout!r:.20}.",
            "give a number of seconds such as 5.",
        )
    start = _check_base_url(base_url) if base_url is not None else None
    expected = challenge_for(registry, identity_id, secret=secret)
    if method == "dns-txt":
        found, why = _check_txt(expected, resolver, float(timeout))
    else:
        url = expected.well_known_url if start is None else start + WELL_KNOWN_PATH
        found, why = _check_well_known(expected, url, http_client, float(timeout))
    state: Literal["verified", "failed"] = "verified" if found else "failed"
    event_id = registry.set_identity_state(identity_id, method, state)
    return VerificationResult(state=state, method=method, detail=why, event_id=event_id)


# --- the identity ----------------------------------------------------------------------------


def _domain_identity(registry: Registry, identity_id: int) -> dict:
    identity = registry.identity(identity_id)
    if identity is None:
        raise DataleverError(f"No identity {identity_id!r:.40}.", "list the account's ones.")
    if identity["kind"] != "domain":
        raise DataleverError(
            f"Identity {identity_id} is a {identity['kind']} identity; only domain "
            "identities are verified by DNS or a well-known file.",
            "verify a domain identity, or add the domain as one (kind 'domain').",
        )
    return identity


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(str(base_url))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise DataleverError(
            f"The base URL {str(base_url)[:120]!r} is not an http(s) origin.",
            "leave base_url unset in production (https://<domain> is used).",
        )
    return str(base_url).rstrip("/")


# --- DNS -------------------------------------------------------------------------------------


def _check_txt(
    expected: Challenge, resolver: dns.resolver.Resolver | None, timeout: float
) -> tuple[bool, str]:
    """(found, why) for the TXT record. Every DNS failure is an answer, not an error."""
    import dns.exception
    import dns.resolver

    name = expected.txt_name
    try:
        resolver = resolver if resolver is not None else dns.resolver.Resolver()
        answer = resolver.resolve(name, "TXT", lifetime=timeout, search=False)
    except dns.resolver.NXDOMAIN:
        return False, f"{name} does not exist in DNS (NXDOMAIN)."
    except dns.resolver.NoAnswer:
        return False, f"{name} exists but has no TXT record."
    except dns.exception.Timeout:
        return False, f"no DNS answer for {name} within {timeout:g} s."
    except dns.resolver.NoNameservers:
        return False, f"every nameserver failed or refused to answer for {name}."
    except dns.resolver.NoResolverConfiguration:
        return False, "no DNS resolver is configured on the registry's host."
    except dns.exception.DNSException as e:
        return False, f"the DNS lookup of {name} failed ({type(e).__name__})."
    wanted = expected.txt_value.encode("ascii")
    records = [b"".join(r.strings).strip() for r in list(answer)[:MAX_TXT_RECORDS]]
    matched = False
    for record in records:  # every record is compared, so timing tells nothing
        matched |= hmac.compare_digest(record, wanted)
    if matched:
        return True, f"the TXT record at {name} holds the challenge."
    ours = sum(record.startswith(TXT_PREFIX.encode("ascii")) for record in records)
    if ours:
        return False, (
            f"{name} has {ours} {TXT_PREFIX}… record(s), none with this identity's challenge."
        )
    return False, f"{name} has {len(records)} TXT record(s), none starting {TXT_PREFIX}."


# --- the well-known file ---------------------------------------------------------------------


def _check_well_known(
    expected: Challenge, url: str, client: httpx.Client | None, timeout: float
) -> tuple[bool, str]:
    """(found, why) for the well-known file. Every HTTP failure is an answer, not an error."""
    import httpx

    own = client is None
    client = client if client is not None else httpx.Client(timeout=timeout)
    try:
        status, body, why = _fetch_same_origin(client, url, timeout)
    except httpx.TimeoutException:
        return False, f"{url} did not answer within {timeout:g} s."
    except httpx.ConnectError as e:
        return False, f"could not connect to {url} ({_first_line(e)})."
    except httpx.HTTPError as e:
        return False, f"fetching {url} failed ({type(e).__name__}: {_first_line(e)})."
    finally:
        if own:
            client.close()
    if why is not None:
        return False, why
    if not 200 <= status < 300:
        return False, f"{url} answered HTTP {status}."
    wanted = (expected.value.encode("ascii"), expected.txt_value.encode("ascii"))
    matched = False
    for line in body.splitlines():  # every line is compared, so timing tells nothing
        line = line.strip()
        for target in wanted:
            matched |= hmac.compare_digest(line, target)
    if matched:
        return True, f"{url} holds the challenge."
    return False, f"{url} does not hold this identity's challenge on a line of its own."


def _fetch_same_origin(
    client: httpx.Client, url: str, timeout: float
) -> tuple[int, bytes, str | None]:
    """(status, body, why it was refused): redirects followed only within the origin, the
    body read up to ``MAX_PROOF_BYTES``, the whole within ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout(f"over {timeout} s")
        with client.stream(
            "GET", url, timeout=left, follow_redirects=False, headers={"Accept": "text/plain"}
        ) as response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("location", ""))
                if _origin(target) != origin:
                    host = urlsplit(target).netloc[:120] or "nowhere"
                    why = (
                        f"{url} redirects to another host or scheme ({host}); only the "
                        "domain itself may answer."
                    )
                    return response.status_code, b"", why
                url = target
                continue
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_PROOF_BYTES:
                return response.status_code, b"", _too_large(url)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_PROOF_BYTES:
                    return response.status_code, b"", _too_large(url)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"over {timeout} s")
            return response.status_code, b"".join(chunks), None
    return 0, b"", f"{url} redirected more than {MAX_REDIRECTS} times."


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _too_large(url: str) -> str:
    return f"{url} is larger than {MAX_PROOF_BYTES // 1024} KiB; the proof is one short line."


def _first_line(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]
