"""C2PA and CAWG training-and-data-mining assertions: the ``use`` a signed Content
Credential states for AI training, generative training, inference and data mining.

What is read:

* the manifest store JSON that the C2PA SDK's ``Reader.json()`` and ``c2patool`` print
  (``manifest_statements``): the **active manifest's** assertions labelled
  ``c2pa.training-mining`` or ``cawg.training-mining`` (with any ``.vN`` version or
  ``__N`` instance suffix), whose ``entries`` map an entry name to ``{"use": …}``;
* a manifest embedded in a file (JPEG, PNG and the other formats the SDK reads), or in a
  sidecar ``.c2pa`` file beside it (``c2pa_file_statements``): the file is read and
  validated by ``c2pa-python``, the C2PA SDK, which turns the JUMBF boxes and CBOR into
  that JSON. This reader does not parse JUMBF itself. Files without a JUMBF box of the C2PA type
  (nor a sidecar) hold no manifest, and are passed over without the SDK, so it is needed only
  for files that carry Content Credentials (``pip install c2pa-python``).

Entries and their purposes (the same for the ``c2pa.`` and ``cawg.`` prefixes):
``ai_generative_training`` → ``train-genai``, ``ai_training`` → ``train-ai``,
``ai_inference`` → ``ai-use``, ``data_mining`` → ``tdm``. ``allowed`` allows;
``notAllowed`` reserves; ``constrained`` reserves too (its ``constraint_info`` is for
people to read), and so does any other value.

Validation: a manifest the SDK finds invalid (``validation_state`` ``Invalid``, or a
failure code in ``validation_status``: a hash mismatch means the file changed after
signing) is unreadable, so it reserves everything. A signer missing from the SDK's trust
list (``signingCredential.untrusted``) is not a failure here: a creator's reservation
counts whoever signed it, and no trust list is configured by default.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from pathlib import Path
from typing import Any

from datalever.errors import DataleverError
from datalever.registry.signals.statements import Statement, malformed, quote

SIGNAL = "c2pa"
LABELS = ("c2pa.training-mining", "cawg.training-mining")
ENTRY_PURPOSES: dict[str, str] = {
    "ai_generative_training": "train-genai",
    "ai_training": "train-ai",
    "ai_inference": "ai-use",
    "data_mining": "tdm",
}
TOLERATED_CODES = frozenset({"signingCredential.untrusted"})
_SUFFIX = re.compile(r"(__\d+)?$")
_VERSION = re.compile(r"\.v\d+$")
_MANIFEST_BOX = re.compile(rb"jumb.{4}jumdc2pa\x00\x11\x00\x10", re.DOTALL)
"""A JUMBF superbox whose description box carries the C2PA manifest store's type UUID."""


def _label(label: str) -> str:
    return _VERSION.sub("", _SUFFIX.sub("", label, count=1))


def manifest_statements(store: str | bytes | dict[str, Any]) -> tuple[Statement, ...]:
    """What a manifest store, as the SDK or ``c2patool`` prints it, says."""
    if not isinstance(store, dict):
        try:
            store = json.loads(store)
        except (ValueError, RecursionError) as e:
            return (malformed(SIGNAL, f"manifest store is not JSON: {str(e)[:60]}"),)
    if not isinstance(store, dict):
        return (malformed(SIGNAL, "manifest store is not a JSON object"),)
    state = store.get("validation_state")
    codes = [v.get("code") for v in store.get("validation_status") or [] if isinstance(v, dict)]
    failures = [str(c) for c in codes if c not in TOLERATED_CODES]
    if state == "Invalid" or failures:
        return (malformed(SIGNAL, f"manifest failed validation: {', '.join(failures)[:120]}"),)
    manifests = store.get("manifests")
    active = store.get("active_manifest")
    if not isinstance(manifests, dict) or not isinstance(active, str):
        return (malformed(SIGNAL, "no active manifest"),)
    manifest = manifests.get(active)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("assertions", []), list):
        return (malformed(SIGNAL, f"active manifest {quote(active)} is not an object"),)
    out: list[Statement] = []
    for assertion in manifest.get("assertions", []):
        if not isinstance(assertion, dict) or not isinstance(assertion.get("label"), str):
            return (malformed(SIGNAL, "an assertion without a label"),)
        label = _label(assertion["label"])
        if label not in LABELS:
            continue
        data = assertion.get("data")
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return (malformed(SIGNAL, f"{label} has no entries object"),)
        out.extend(_entries(label, entries))
    return tuple(out)


def _entries(label: str, entries: dict[str, Any]) -> list[Statement]:
    out: list[Statement] = []
    for name, entry in entries.items():
        prefix, _, kind = str(name).partition(".")
        purpose = ENTRY_PURPOSES.get(kind) if prefix in ("c2pa", "cawg") else None
        if purpose is None:
            continue
        use = entry.get("use") if isinstance(entry, dict) else None
        rule = f"{SIGNAL}: {label} {name} use {quote(str(use))}"
        if use == "allowed":
            out.append(Statement(SIGNAL, purpose, "allowed", rule))
        elif use == "notAllowed":
            out.append(Statement(SIGNAL, purpose, "reserved", rule))
        elif use == "constrained":
            info = entry.get("constraint_info")
            shown = f" ({quote(str(info))})" if info else ""
            out.append(Statement(SIGNAL, purpose, "reserved", rule + shown))
        else:
            out.append(Statement(SIGNAL, purpose, "reserved", rule + ", an unknown value"))
    return out


def has_manifest(data: bytes) -> bool:
    """Whether ``data`` embeds a manifest store: a JUMBF box of the C2PA type. A page that
    merely mentions JUMBF or c2pa does not, and needs no SDK."""
    return _MANIFEST_BOX.search(data) is not None


def _sdk() -> Any:
    try:
        import c2pa as sdk
    except ImportError:
        raise DataleverError(
            "This file carries C2PA Content Credentials, and reading them needs the C2PA "
            "SDK, c2pa-python, which is not installed.",
            "pip install c2pa-python",
        ) from None
    return sdk


def embedded_statements(
    data: bytes, media_type: str | None = None, manifest: bytes | None = None
) -> tuple[Statement, ...]:
    """What the manifest embedded in ``data`` (or given as sidecar ``manifest`` bytes) says.
    ``media_type`` helps the SDK; without it, the SDK detects the format."""
    if manifest is None and not has_manifest(data):
        return ()
    sdk = _sdk()
    try:
        reader = sdk.Reader(media_type or None, io.BytesIO(data), manifest)
        try:
            text = reader.json()
        finally:
            reader.close()
    except sdk.C2paError as e:
        if type(e).__name__.endswith("ManifestNotFound"):
            return ()  # the marker bytes were a coincidence
        return (malformed(SIGNAL, f"C2PA SDK: {str(e).splitlines()[0][:100]}"),)
    except Exception as e:  # noqa: BLE001  (the SDK's native side must not stop a decision)
        return (malformed(SIGNAL, f"C2PA SDK: {type(e).__name__}"),)
    return manifest_statements(text)


def c2pa_file_statements(path: Path, data: bytes | None = None) -> tuple[Statement, ...]:
    """What the manifest embedded in a local file, or in its sidecar ``.c2pa``, says.
    ``data`` saves a re-read of the file."""
    if data is None:
        data = path.read_bytes()
    media_type = mimetypes.guess_type(path.name)[0]
    out = list(embedded_statements(data, media_type))
    sidecar = path.with_suffix(".c2pa")
    if sidecar != path and sidecar.is_file():
        found = embedded_statements(data, media_type, sidecar.read_bytes())
        out.extend(
            Statement(s.signal, s.purpose, s.outcome, f"{s.rule} in {sidecar.name}", s.malformed)
            for s in found
        )
    return tuple(out)
