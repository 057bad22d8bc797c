"""IPTC/PLUS ``plus:DataMining`` in XMP: the data-mining permission photo agencies and
cameras write into image files.

The XMP packets are found by scanning a file's bytes for ``<x:xmpmeta`` … ``</x:xmpmeta>``
(how XMP is embedded in JPEG, PNG, TIFF, PDF, MP4 …), or read whole from a sidecar
``.xmp`` file. They are parsed with ``defusedxml``, which refuses entity declarations, so a
packet built to expand (an XML bomb) is unreadable, hence a reservation, not a hang.

The PLUS vocabulary (``http://ns.useplus.org/ldf/vocab/``) maps to purposes:

* ``DMI-ALLOWED`` → ``tdm`` allowed (so every purpose);
* ``DMI-PROHIBITED`` and ``DMI-PROHIBITED-SEECONSTRAINT`` → ``tdm`` reserved (a constraint
  this reader cannot evaluate counts as a reservation);
* ``DMI-PROHIBITED-AIMLTRAINING`` → ``train-ai`` reserved;
* ``DMI-PROHIBITED-GENAIMLTRAINING`` → ``train-genai`` reserved;
* ``DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING`` → ``tdm`` reserved, ``search`` allowed;
* ``DMI-UNSPECIFIED`` → no statement: the creator chose to say nothing;
* any other value → ``tdm`` reserved.
"""

from __future__ import annotations

from pathlib import Path

from datalever.registry.signals.statements import Statement, malformed, quote

SIGNAL = "xmp"
PLUS = "http://ns.useplus.org/ldf/xmp/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
VOCAB = "http://ns.useplus.org/ldf/vocab/"
MAX_PACKET = 4 * 1024 * 1024
MAX_PACKETS = 16
_OPEN, _CLOSE = b"<x:xmpmeta", b"</x:xmpmeta>"

MEANINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "DMI-ALLOWED": (("tdm", "allowed"),),
    "DMI-PROHIBITED": (("tdm", "reserved"),),
    "DMI-PROHIBITED-SEECONSTRAINT": (("tdm", "reserved"),),
    "DMI-PROHIBITED-AIMLTRAINING": (("train-ai", "reserved"),),
    "DMI-PROHIBITED-GENAIMLTRAINING": (("train-genai", "reserved"),),
    "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING": (("tdm", "reserved"), ("search", "allowed")),
    "DMI-UNSPECIFIED": (),
}
"""What each PLUS data-mining value says, as (purpose, outcome) pairs."""


def packets(data: bytes) -> list[bytes]:
    """The XMP packets embedded in ``data``, in file order (at most ``MAX_PACKETS``)."""
    found: list[bytes] = []
    start = data.find(_OPEN)
    while start >= 0 and len(found) < MAX_PACKETS:
        end = data.find(_CLOSE, start)
        if end < 0:
            found.append(data[start:])  # an unterminated packet: unreadable, so it reserves
            break
        found.append(data[start : end + len(_CLOSE)])
        start = data.find(_OPEN, end)
    return found


def _values(packet: bytes) -> list[str]:
    """Every plus:DataMining value in a packet; raises on XML that does not parse."""
    from defusedxml import ElementTree

    root = ElementTree.fromstring(packet)
    values: list[str] = []
    attribute = f"{{{PLUS}}}DataMining"
    for element in root.iter():
        if attribute in element.attrib:
            values.append(element.attrib[attribute])
        if element.tag == attribute:
            resource = element.attrib.get(f"{{{RDF}}}resource")
            text = (element.text or "").strip()
            values.append(resource if resource is not None else text)
    return values


def packet_statements(packet: bytes, number: int = 1) -> tuple[Statement, ...]:
    """What one XMP packet says."""
    if len(packet) > MAX_PACKET:
        return (malformed(SIGNAL, f"packet {number} is over {MAX_PACKET} bytes"),)
    try:
        values = _values(packet)
    except Exception as e:  # noqa: BLE001  (parse errors, refused entities, bad encodings)
        return (malformed(SIGNAL, f"packet {number}: {type(e).__name__}"),)
    out: list[Statement] = []
    for value in values:
        value = value.strip()
        code = value.removeprefix(VOCAB)
        rule = f"{SIGNAL}: plus:DataMining {quote(value)} (packet {number})"
        meaning = MEANINGS.get(code)
        if meaning is None:
            out.append(Statement(SIGNAL, "tdm", "reserved", rule + ", an unknown value"))
            continue
        out.extend(Statement(SIGNAL, purpose, outcome, rule) for purpose, outcome in meaning)
    return tuple(out)


def xmp_statements(data: bytes) -> tuple[Statement, ...]:
    """What the XMP packets embedded in a file's bytes say."""
    out: list[Statement] = []
    for number, packet in enumerate(packets(bytes(data)), start=1):
        out.extend(packet_statements(packet, number))
    return tuple(out)


def sidecars(path: Path) -> list[Path]:
    """The sidecar XMP files of ``path`` that exist: ``photo.xmp`` and ``photo.jpg.xmp``."""
    if path.suffix.lower() == ".xmp":
        return []
    names = [path.with_suffix(".xmp"), path.with_name(path.name + ".xmp")]
    return [p for p in dict.fromkeys(names) if p.is_file()]


def sidecar_statements(data: bytes) -> tuple[Statement, ...]:
    """What a sidecar ``.xmp`` file says: its packet, or the whole file when it has no
    ``x:xmpmeta`` wrapper."""
    found = packets(bytes(data))
    if not found:
        return packet_statements(bytes(data), 1) if data.strip() else ()
    return xmp_statements(data)


def xmp_file_statements(path: Path, data: bytes | None = None) -> tuple[Statement, ...]:
    """What a local file's embedded XMP and its sidecars say. ``data`` saves a re-read."""
    if data is None:
        data = path.read_bytes()
    if path.suffix.lower() == ".xmp":
        return sidecar_statements(data)
    out = list(xmp_statements(data))
    for sidecar in sidecars(path):
        out.extend(
            Statement(s.signal, s.purpose, s.outcome, f"{s.rule} in {sidecar.name}", s.malformed)
            for s in sidecar_statements(sidecar.read_bytes())
        )
    return tuple(out)
