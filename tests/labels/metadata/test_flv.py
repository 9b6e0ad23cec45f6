"""FLV: the contract, plus ffprobe showing ``AIGC`` among the onMetaData tags, ffmpeg decoding every
frame, PyAV reading the same packets, the PreviousTagSize chain and the keyframe index still right
after the script tag grew, an AMF0 round trip of every type, and hostile AMF0 data."""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from typing import Any

import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.flv import (
    UNDEFINED,
    UNSUPPORTED,
    AmfDate,
    AmfObject,
    AmfReference,
    EcmaArray,
    FlvLabeler,
    LongString,
    TypedObject,
    XmlDocument,
    decode_amf,
    encode_amf,
)
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    LAVFI,
    ffmpeg_decode,
    ffmpeg_samples,
    ffprobe,
    label_copy,
    packets,
    tags_and_streams,
    write_samples,
)

#: onMetaData keys that are absolute file offsets: they move with the script tag's growth.
OFFSET_KEYS = {"lastkeyframelocation", "AIGC"}


def tags(data: bytes) -> list[tuple[int, int, int]]:
    """``(offset, type, data size)`` of every tag, checking each PreviousTagSize on the way."""
    (header_size,) = struct.unpack(">I", data[5:9])
    assert data[header_size : header_size + 4] == bytes(4)
    found, pos = [], header_size + 4
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        found.append((pos, data[pos] & 0x1F, size))
        end = pos + 11 + size
        assert struct.unpack(">I", data[end : end + 4])[0] == 11 + size
        pos = end + 4
    assert pos == len(data)
    return found


def without_metadata(data: bytes) -> bytes:
    (pos, kind, size) = tags(data)[0]
    assert kind == 18
    return data[:pos] + data[pos + 11 + size + 4 :]


def with_object_metadata(data: bytes, exotic: bool = False) -> bytes:
    """The onMetaData of ``data`` rewritten as an AMF0 object holding the AMF0 types libavformat
    reads; ``exotic`` adds the others (typed object, reference, XML, long string, unsupported)."""
    (pos, _, size) = tags(data)[0]
    values, _ = decode_amf(data[pos + 11 : pos + 11 + size])
    meta = values[1]
    assert isinstance(meta, EcmaArray)
    extra: list[tuple[str, Any]] = [
        ("created", AmfDate(1.7e12, -480)),
        ("nested", AmfObject([("flag", True), ("none", None), ("undef", UNDEFINED)])),
        ("list", [1.0, "two", False]),
    ]
    if exotic:
        extra += [
            ("typed", TypedObject("Cls", [("x", 1.5)])),
            ("ref", AmfReference(0)),
            ("xml", XmlDocument("<a/>")),
            ("long", LongString("L")),
            ("unsupported", UNSUPPORTED),
        ]
    script = encode_amf("onMetaData") + encode_amf(AmfObject(meta.items + extra))
    tag = bytes((18,)) + len(script).to_bytes(3, "big") + bytes(7) + script
    return data[:pos] + tag + struct.pack(">I", len(tag)) + data[pos + 11 + size + 4 :]


@functools.cache
def sample_bytes() -> dict[str, bytes]:
    runs = {
        "flv1-mp3.flv": [
            *LAVFI,
            "sine=f=440:sample_rate=22050",
            "-t",
            "1",
            "-c:v",
            "flv1",
            "-c:a",
            "libmp3lame",
            "-metadata",
            "title=A title",
            "-metadata",
            "comment=hello",
        ],
        # keyframes/filepositions: absolute offsets that must follow the script tag's growth
        "h264-aac-index.flv": [
            *LAVFI,
            "sine=f=440",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-g",
            "3",
            "-c:a",
            "aac",
            "-flvflags",
            "add_keyframe_index",
            "-metadata",
            "title=Indexed",
        ],
    }
    made = ffmpeg_samples(runs)
    made["no-metadata.flv"] = without_metadata(made["flv1-mp3.flv"])
    made["object-metadata.flv"] = with_object_metadata(made["flv1-mp3.flv"])
    return made


def make_flvs(folder: Path) -> list[Path]:
    return write_samples(folder, sample_bytes())


#: ffprobe at warning level, and nothing printed: e.g. "Invalid keyframes object" would show there.
ffprobe_clean = functools.partial(ffprobe, loglevel="warning", clean_stderr=True)
write = functools.partial(label_copy, FlvLabeler())


def metadata(data: bytes) -> list[tuple[str, Any]]:
    (pos, kind, size) = tags(data)[0]
    assert kind == 18
    values, _ = decode_amf(data[pos + 11 : pos + 11 + size])
    meta = values[1]
    assert isinstance(meta, EcmaArray | AmfObject)
    return meta.items


class TestFlvContract(MetadataLabelerContract):
    labeler = FlvLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_flvs(folder)

    def other_metadata(self, path: Path) -> Any:
        keys = ("codec_name", "width", "height", "sample_rate", "channels")
        return tags_and_streams(ffprobe_clean(path), keys, skip_tags=OFFSET_KEYS)


@pytest.mark.tools
def test_ffprobe_shows_the_label_and_every_frame_decodes(tmp_path: Path) -> None:
    label = make_label()
    for src in make_flvs(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        assert AigcLabel.parse(ffprobe_clean(dst)["format"]["tags"]["AIGC"]) == label
        ffmpeg_decode(dst, xerror=True)
        assert packets(dst) == packets(src)
        data = dst.read_bytes()
        first = tags(data)[0]
        assert first[1] == 18 and data[first[0] + 11 + 3 : first[0] + 11 + 13] == b"onMetaData"
        keys = [k for k, _ in metadata(data)]
        assert keys.count("AIGC") == 1 and keys[-1] == "AIGC"


def test_keyframe_positions_follow_the_growth(tmp_path: Path) -> None:
    src = make_flvs(tmp_path)[1]
    dst = tmp_path / "out.flv"
    write(src, dst, make_label())
    before, after = src.read_bytes(), dst.read_bytes()
    delta = len(after) - len(before)
    assert delta > 0
    old, new = dict(metadata(before)), dict(metadata(after))
    positions = dict(new["keyframes"].items)["filepositions"]
    assert positions == [p + delta for p in dict(old["keyframes"].items)["filepositions"]]
    video_tags = {pos for pos, kind, _ in tags(after) if kind == 9}
    for position in positions:
        assert int(position) in video_tags
        assert after[int(position) + 11] >> 4 == 1  # a keyframe
    # (ffmpeg's own value does not point at a tag start; it moves with the rest all the same)
    assert new["lastkeyframelocation"] == old["lastkeyframelocation"] + delta
    assert new["filesize"] == len(after)


def test_amf0_round_trip() -> None:
    data = with_object_metadata(sample_bytes()["flv1-mp3.flv"], exotic=True)
    (pos, _, size) = tags(data)[0]
    script = data[pos + 11 : pos + 11 + size]
    values, stop = decode_amf(script)
    assert stop == len(script)
    assert b"".join(encode_amf(v) for v in values) == script
    with_label = io.BytesIO()
    FlvLabeler().write(io.BytesIO(data), with_label, make_label().to_json())
    assert metadata(with_label.getvalue())[:-1] == metadata(data)
    long_text = "x" * 70_000
    assert encode_amf(long_text)[0] == 12  # a long string past 65535 bytes
    assert decode_amf(encode_amf(long_text))[0] == [LongString(long_text)]


def test_relabel_replaces_the_value(tmp_path: Path) -> None:
    src = make_flvs(tmp_path)[1]
    once, twice = tmp_path / "1.flv", tmp_path / "2.flv"
    write(src, once, make_label())
    longer = make_label(ContentPropagator="001191110102MACQD9K64020001", PropagateID="Q" * 30)
    write(once, twice, longer)
    assert [k for k, _ in metadata(twice.read_bytes())].count("AIGC") == 1
    with twice.open("rb") as fh:
        assert AigcLabel.parse(FlvLabeler().read(fh) or "") == longer
    assert packets(twice) == packets(src)


def script_tag(script: bytes) -> bytes:
    tag = bytes((18,)) + len(script).to_bytes(3, "big") + bytes(7) + script
    return tag + struct.pack(">I", len(tag))


FLV_HEADER = b"FLV\x01\x05" + struct.pack(">I", 9) + bytes(4)
NAME = encode_amf("onMetaData")


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (NAME + b"\x08\x00\x00\x00\x01" + b"\x00\x05AIGC\x02\xff\xff", CorruptMediaError),  # long
        (NAME + b"\x0a\xff\xff\xff\xff\x00", CorruptMediaError),  # strict array count
        (NAME + b"\x03" + b"\x00\x01a\x03" * 40, MediaLimitError),  # nesting
        (NAME + b"\x11\x0a", UnsupportedFormatError),  # AMF3
        (NAME + b"\x04", CorruptMediaError),  # movieclip marker
        (NAME + b"\x00" + bytes(8), CorruptMediaError),  # not an object
    ],
)
def test_hostile_amf0_is_a_typed_error(script: bytes, error: type[MediaError]) -> None:
    blob = FLV_HEADER + script_tag(script)
    with pytest.raises(error):
        FlvLabeler().read(io.BytesIO(blob))
    with pytest.raises(error):
        FlvLabeler().write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())


def test_hostile_tags_are_typed_errors() -> None:
    too_long = FLV_HEADER + bytes((9,)) + (1000).to_bytes(3, "big") + bytes(7) + b"abc"
    with pytest.raises(CorruptMediaError):
        list(FlvLabeler().payload(io.BytesIO(too_long)))
    bad_header = b"FLV\x01\x05" + struct.pack(">I", 0xFFFFFFF0)
    with pytest.raises(CorruptMediaError):
        FlvLabeler().read(io.BytesIO(bad_header))
    with pytest.raises(UnsupportedFormatError):
        FlvLabeler().read(io.BytesIO(b"NOTFLV" + bytes(20)))


def test_in_place_only_for_a_same_size_relabel(tmp_path: Path) -> None:
    labeler = FlvLabeler()
    src = make_flvs(tmp_path)[1]
    original = src.read_bytes()
    with src.open("r+b") as fh:  # the first label grows the script tag: every tag would move
        assert not labeler.write_in_place(fh, make_label().to_json())
    assert src.read_bytes() == original
    labeled = tmp_path / "labeled.flv"
    write(src, labeled, make_label())
    same_size = make_label(ProduceID="00000000000000AB")
    with labeled.open("r+b") as fh:
        assert labeler.write_in_place(fh, same_size.to_json())
    assert AigcLabel.parse(ffprobe_clean(labeled)["format"]["tags"]["AIGC"]) == same_size
    assert packets(labeled) == packets(src)
    tags(labeled.read_bytes())  # the PreviousTagSize chain still holds
