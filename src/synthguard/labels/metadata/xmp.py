"""The TC260 XMP property: read it from, and set it in, an XMP packet without losing anything else.

Namespace ``http://www.tc260.org.cn/ns/AIGC/1.0/``, prefix ``TC260``, property ``AIGC`` whose value is
the label's JSON text, written in element form ``<TC260:AIGC>...</TC260:AIGC>``; readers also accept
the attribute form ``TC260:AIGC="..."`` on an ``rdf:Description``.

Why this is hand-written rather than exiv2's XMP engine: exiv2 (pyexiv2) re-serialises the whole
packet through its own model (changing prefixes, order and padding of other tools' properties) and is
a C++ parser with no bound on hostile input. Here the packet is parsed with ``defusedxml`` (no DTD, no
entities, no external references: an XML bomb or an XXE packet is refused) only to check it, and the
change is a textual edit of the one property, so every other byte of the packet stays as it was. When
the packet has padding, its length is kept, so in-place edits stay in place.
"""

from __future__ import annotations

import re
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from synthguard.errors import CorruptMediaError, MediaLimitError

__all__ = ["MAX_PACKET", "TC260_NS", "TC260_PREFIX", "new_packet", "read_aigc", "set_aigc"]

TC260_NS: Final = "http://www.tc260.org.cn/ns/AIGC/1.0/"
TC260_PREFIX: Final = "TC260"
RDF_NS: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_AIGC_TAG: Final = f"{{{TC260_NS}}}AIGC"
#: An XMP packet larger than this is refused (the largest legitimate ones are a few MB).
MAX_PACKET: Final = 16 * 1024 * 1024

_PACKET_HEAD: Final = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
_PACKET_TAIL: Final = '<?xpacket end="w"?>'


def escape(text: str) -> str:
    """XML character data escaping (``xml.sax.saxutils.escape`` costs an ``urllib`` import)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _description(label_json: str, rdf: str = "rdf") -> str:
    return (
        f'<{rdf}:Description {rdf}:about="" xmlns:{TC260_PREFIX}="{TC260_NS}">'
        f"<{TC260_PREFIX}:AIGC>{escape(label_json)}</{TC260_PREFIX}:AIGC>"
        f"</{rdf}:Description>"
    )


def new_packet(label_json: str) -> bytes:
    """A complete XMP packet holding only the label."""
    return (
        f"{_PACKET_HEAD}"
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}">'
        f"{_description(label_json)}</rdf:RDF></x:xmpmeta>{_PACKET_TAIL}"
    ).encode()


def _decode(packet: bytes) -> str:
    if len(packet) > MAX_PACKET:
        raise MediaLimitError(f"XMP packet is {len(packet)} bytes, more than {MAX_PACKET}")
    for encoding in ("utf-8", "utf-16"):
        try:
            text = packet.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text.rstrip("\x00")
    raise CorruptMediaError("XMP packet is neither UTF-8 nor UTF-16")


def _parse(text: str) -> Element:
    # drop the xpacket processing instructions' BOM issue: ElementTree accepts PIs as they are
    try:
        return fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MediaLimitError(f"XMP packet refused: {type(exc).__name__} ({exc})") from exc
    except (ParseError, ValueError) as exc:
        raise CorruptMediaError(f"XMP packet is not well-formed XML: {exc}") from exc


def _find_all(root: Element) -> list[str]:
    found: list[str] = []
    for element in root.iter():
        if element.tag == _AIGC_TAG:
            found.append("".join(element.itertext()).strip())
        value = element.attrib.get(_AIGC_TAG)
        if value is not None:
            found.append(value.strip())
    return found


def read_aigc(packet: bytes) -> str | None:
    """The ``TC260:AIGC`` value in the packet (element or attribute form), or ``None``.

    Raises ``CorruptMediaError`` for a packet that is not XML, ``MediaLimitError`` for a hostile one.
    """
    text = _decode(packet)
    if "AIGC" not in text:
        return None  # fast path: most packets carry no label at all
    found = _find_all(_parse(text))
    return found[0] if found else None


def _prefixes(text: str, namespace: str) -> list[str]:
    pattern = r"xmlns:([A-Za-z_][\w.\-]*)\s*=\s*([\"'])" + re.escape(namespace) + r"\2"
    return list(dict.fromkeys(m.group(1) for m in re.finditer(pattern, text)))


def set_aigc(packet: bytes | None, label_json: str) -> bytes:
    """Return ``packet`` with exactly one ``TC260:AIGC`` property whose value is ``label_json``.

    Everything else in the packet is kept byte for byte; an existing element is updated in place,
    an attribute-form property is replaced by the element form. With ``packet=None`` a new packet is
    made. Keeps the packet's length when its padding allows.
    """
    if packet is not None and len(packet) > MAX_PACKET:
        raise MediaLimitError(f"XMP packet is {len(packet)} bytes, more than {MAX_PACKET}")
    if packet is None or not packet.strip(b"\x00 \t\r\n"):
        return new_packet(label_json)
    text = _decode(packet)
    root = _parse(text)
    original_length = len(text.encode())
    prefixes = _prefixes(text, TC260_NS)
    value = escape(label_json)
    elements = [
        m
        for p in prefixes
        for m in re.finditer(
            rf"<{re.escape(p)}:AIGC(\s[^>]*)?>(.*?)</{re.escape(p)}:AIGC\s*>", text, re.DOTALL
        )
    ]
    attr_res = [re.compile(rf"\s{re.escape(p)}:AIGC\s*=\s*(\"[^\"]*\"|'[^']*')") for p in prefixes]
    empty_res = [re.compile(rf"<{re.escape(p)}:AIGC(\s[^>]*)?/>") for p in prefixes]
    if elements:
        first = elements[0]
        start, end = first.span(2)
        text = text[:start] + value + text[end:]
        shift = len(value) - (end - start)
        # any further copies (another prefix, another Description) go: one label per file
        for extra in reversed(elements[1:]):
            s, e = extra.span()
            s, e = (s + shift, e + shift) if s > first.start() else (s, e)
            text = text[:s] + text[e:]
        for rx in attr_res + empty_res:
            text = rx.sub("", text)
    else:
        for rx in attr_res + empty_res:
            text = rx.sub("", text)
        rdf = (_prefixes(text, RDF_NS) or ["rdf"])[0]
        close = text.rfind(f"</{rdf}:RDF>")
        if close < 0:
            raise CorruptMediaError("XMP packet has no rdf:RDF element to add the label to")
        text = text[:close] + _description(label_json, rdf) + text[close:]
    text = _keep_length(text, original_length)
    found = _find_all(_parse(text))
    if found != [label_json]:
        raise CorruptMediaError(f"XMP packet did not take the label cleanly (found {len(found)})")
    del root
    return text.encode()


def _keep_length(text: str, length: int) -> str:
    """Shrink or grow the whitespace padding before ``<?xpacket end`` to keep ``length`` bytes."""
    tail = text.rfind("<?xpacket end")
    if tail < 0:
        return text
    body = text[:tail].rstrip(" \t\r\n")
    padding = text[len(body) : tail]
    current = len(text.encode())
    if current == length or not padding:
        return text
    new_padding_len = len(padding) - (current - length)
    if new_padding_len < 1:
        new_padding_len = 1
    new_padding = ("\n" + " " * (new_padding_len - 1)) if new_padding_len else ""
    return body + new_padding + text[tail:]
