"""The TC260 XMP property: merging into other tools' packets, variants, hostile packets."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError
from synthguard.labels.metadata.xmp import TC260_NS, new_packet, read_aigc, set_aigc

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
LABEL = '{"Label":"1","ContentProducer":"X","ProduceID":"00000000000000AB"}'


def packet(body: str, padding: int = 0) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">{body}</rdf:RDF>'
        f'</x:xmpmeta>{" " * padding}<?xpacket end="w"?>'
    ).encode()


OTHER = (
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6">'
    "<dc:creator><rdf:Seq><rdf:li>Someone</rdf:li></rdf:Seq></dc:creator></rdf:Description>"
)


def test_new_packet_round_trip() -> None:
    assert read_aigc(new_packet(LABEL)) == LABEL


def test_merge_keeps_every_other_byte() -> None:
    original = packet(OTHER)
    merged = set_aigc(original, LABEL)
    assert read_aigc(merged) == LABEL
    assert OTHER.encode() in merged
    assert merged.startswith(original[: original.index(b"</rdf:RDF>")])


def test_update_in_place_keeps_length_with_padding() -> None:
    first = set_aigc(packet(OTHER, padding=400), LABEL)
    second = set_aigc(first, LABEL.replace("AB", "CD"))
    assert len(second) == len(first)
    assert read_aigc(second) == LABEL.replace("AB", "CD")
    assert second.count(b"AIGC>") == 2  # one element: its open and close tags


def test_other_prefix_and_attribute_forms_become_one_element() -> None:
    odd_prefix = packet(
        f'<rdf:Description rdf:about="" xmlns:aigc="{TC260_NS}"><aigc:AIGC>old</aigc:AIGC></rdf:Description>'
    )
    assert read_aigc(odd_prefix) == "old"
    updated = set_aigc(odd_prefix, LABEL)
    assert read_aigc(updated) == LABEL and b"old" not in updated
    attribute = packet(f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}" TC260:AIGC=\'{LABEL}\'/>')
    assert read_aigc(attribute) == LABEL
    replaced = set_aigc(attribute, LABEL.replace("AB", "EF"))
    assert read_aigc(replaced) == LABEL.replace("AB", "EF")
    assert replaced.count(b"TC260:AIGC") == 2


def test_values_are_escaped() -> None:
    tricky = '{"Label":"1","ContentProducer":"a<b&c","ProduceID":"x"}'
    assert read_aigc(set_aigc(packet(OTHER), tricky)) == tricky


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "AIGC">]><x>&a;</x>', MediaLimitError),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e; AIGC</x>', MediaLimitError),
        (b"<x:xmpmeta AIGC", CorruptMediaError),
        (b"\xff\xfe\x00\xd8 AIGC", CorruptMediaError),
        (b" " * (17 * 1024 * 1024), MediaLimitError),
    ],
)
def test_hostile_packets_are_refused(data: bytes, error: type[MediaError]) -> None:
    with pytest.raises(error):
        read_aigc(data)
    with pytest.raises(MediaError):
        set_aigc(data, LABEL)


def test_packet_without_rdf_cannot_take_a_label() -> None:
    with pytest.raises(CorruptMediaError, match="rdf:RDF"):
        set_aigc(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>', LABEL)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_only_media_errors(data: bytes) -> None:
    with contextlib.suppress(MediaError):
        read_aigc(data + b"AIGC")
    with contextlib.suppress(MediaError):
        assert read_aigc(set_aigc(data, LABEL)) == LABEL
