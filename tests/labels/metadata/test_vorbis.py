"""FLAC, Ogg Vorbis, Opus (Vorbis comment AIGC=): the contract, ffprobe/ffmpeg/mutagen as independent
readers, page renumbering, hostile structures."""

from __future__ import annotations

import functools
import io
import json
import struct
from pathlib import Path
from typing import Any

import av
import mutagen
import numpy as np
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TIT2

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, UnsupportedFormatError
from synthguard.labels.metadata.vorbis import Comments, VorbisCommentLabeler, ogg_crc
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import CountingReader, decode_pcm, ffprobe, label_copy, tiny_png


def encode(fmt: str, codec: str, rate: int, layout: str = "mono", seconds: float = 0.3) -> bytes:
    """A short tone through PyAV, with a title and an artist in the container's comments."""
    buffer = io.BytesIO()
    channels = 2 if layout == "stereo" else 1
    with av.open(buffer, "w", format=fmt) as out:
        out.metadata.update({"title": "Tone", "artist": "Unit"})
        stream = out.add_stream(codec, rate=rate, layout=layout, options={"strict": "-2"})
        context = stream.codec_context
        size = context.frame_size or 1024
        t = np.arange(int(rate * seconds)) / rate
        tone = np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[None, :], channels, axis=0)
        for pts in range(0, tone.shape[1], size):
            chunk = tone[:, pts : pts + size]
            if context.format.name == "s16":
                array = (chunk * 32767).astype(np.int16).T.reshape(1, -1)
            else:
                array = chunk.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(array, format=context.format.name, layout=layout)
            frame.sample_rate, frame.pts = rate, pts
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def bare_flac(data: bytes) -> bytes:
    """Only STREAMINFO (marked last) and the frames: no comment block, no padding."""
    pos = 4
    while True:
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 4 + length
        if last:
            break
    return b"fLaC\x80" + data[5:42] + data[pos:]


def make_audio(folder: Path) -> list[Path]:
    flac = encode("flac", "flac", 22050)
    rich = folder / "rich.flac"
    rich.write_bytes(flac)
    tagged = FLAC(rich)
    tagged["genre"] = "Test"
    tagged["comment"] = ["one", "two"]
    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, "image/png", "cover", tiny_png()
    tagged.add_picture(picture)
    tagged.save()
    id3 = io.BytesIO()
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["In the ID3 tag"]))
    tags.save(id3)
    behind_id3 = folder / "id3-prefixed.flac"
    behind_id3.write_bytes(id3.getvalue() + flac)
    bare = folder / "bare.flac"
    bare.write_bytes(bare_flac(flac))
    vorbis = folder / "tone.ogg"
    vorbis.write_bytes(encode("ogg", "vorbis", 44100, "stereo"))
    opus = folder / "tone.opus"
    opus.write_bytes(encode("ogg", "libopus", 48000))
    return [rich, behind_id3, bare, vorbis, opus]


def audio_metadata(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    found = mutagen.File(path)
    tags = found.tags or {}
    return {
        "tags": sorted((k.lower(), v) for k, v in tags.items() if k.lower() != "aigc"),
        "vendor": getattr(found.tags, "vendor", None) or None,
        "pictures": [p.data for p in getattr(found, "pictures", [])],
        "info": (getattr(found.info, "sample_rate", None), found.info.channels, round(found.info.length, 3)),
        "id3": data[: data.find(b"fLaC")] if data.startswith(b"ID3") else None,
    }


class TestVorbisCommentContract(MetadataLabelerContract):
    labeler = VorbisCommentLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_audio(folder)

    def other_metadata(self, path: Path) -> Any:
        return audio_metadata(path)


write = functools.partial(label_copy, VorbisCommentLabeler())


def reference_crc(page: bytes) -> int:
    """The Ogg checksum bit by bit (independent of the zlib trick the module uses)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def check_pages(data: bytes) -> int:
    """Every page's checksum, and consecutive sequence numbers; returns the page count."""
    pos = count = 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS"
        segments = data[pos + 26]
        end = pos + 27 + segments + sum(data[pos + 27 : pos + 27 + segments])
        page = bytearray(data[pos:end])
        (crc,) = struct.unpack_from("<I", page, 22)
        struct.pack_into("<I", page, 22, 0)
        assert reference_crc(bytes(page)) == crc == ogg_crc(bytes(page))
        assert struct.unpack_from("<I", page, 18)[0] == count
        count += 1
        pos = end
    return count


#: The decoded samples, ffmpeg printing no error on the way.
pcm = functools.partial(decode_pcm, clean_stderr=True)


@pytest.mark.tools
def test_ffprobe_reads_the_label_and_samples_are_unchanged(tmp_path: Path) -> None:
    label = make_label()
    for src in make_audio(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label.to_json())
        record = ffprobe(dst, "-show_entries", "format_tags:stream_tags")
        tags = {**record["format"].get("tags", {}), **record["streams"][0].get("tags", {})}
        assert AigcLabel.parse(tags["AIGC"]) == label, src
        assert mutagen.File(dst)["AIGC"] == [label.to_json()]
        assert pcm(dst) == pcm(src)


@pytest.mark.tools
def test_ogg_pages_renumbered_when_the_comment_needs_more_pages(tmp_path: Path) -> None:
    for src in make_audio(tmp_path)[3:]:
        before = check_pages(src.read_bytes())
        big = json.dumps({"Label": "1", "ReservedCode1": "A" * 70_000}, separators=(",", ":"))
        grown = tmp_path / f"big-{src.name}"
        write(src, grown, big)
        assert check_pages(grown.read_bytes()) == before + 1
        assert mutagen.File(grown)["AIGC"] == [big]
        assert pcm(grown) == pcm(src)
        small = tmp_path / f"small-{src.name}"
        write(grown, small, make_label().to_json())
        assert check_pages(small.read_bytes()) == before + 1  # spread over the pages it had
        assert pcm(small) == pcm(src)
        with small.open("rb") as a, src.open("rb") as b:
            labeler = VorbisCommentLabeler()
            assert b"".join(labeler.payload(a)) == b"".join(labeler.payload(b))


def test_duplicate_and_lower_case_fields_become_one() -> None:
    comments = Comments(b"vendor", (b"TITLE=x", b"aigc=old", b"ARTIST=y", b"AIGC=older"), b"\x01")
    relabeled = comments.with_label('{"Label":"1"}')
    assert relabeled.fields == (b"TITLE=x", b'AIGC={"Label":"1"}', b"ARTIST=y")
    assert Comments.parse(relabeled.to_bytes()) == relabeled
    assert comments.label() == "old"


def test_non_utf8_fields_are_kept_byte_for_byte() -> None:
    comments = Comments(b"v", (b"TITLE=\xff\xfe latin", b"EMPTY="), b"")
    assert comments.with_label("{}").fields[:2] == comments.fields


def flac_with_block(kind: int, body: bytes, length: int | None = None) -> bytes:
    streaminfo = b"\x00\x00\x00\x22" + bytes(34)
    size = len(body) if length is None else length
    return (
        b"fLaC" + streaminfo + bytes([0x80 | kind]) + size.to_bytes(3, "big") + body + b"\xff\xf8" + bytes(32)
    )


@pytest.mark.parametrize(
    "data",
    [
        flac_with_block(4, bytes(8), length=5000),  # block past the end
        flac_with_block(127, bytes(8)),  # invalid block type
        b"fLaC\x81\x00\x00\x10" + bytes(16),  # no STREAMINFO first
        flac_with_block(4, struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0xFFFFFFF)),  # field count
        flac_with_block(4, struct.pack("<I", 100) + b"ab"),  # vendor past its block
        b"fLaC\x00\x00\x00",  # truncated
        b"OggS\x01" + bytes(40),  # page version 1
        b"OggS\x00\x02" + bytes(20) + b"\x01\xff" + bytes(300),  # first page's packet unfinished
    ],
)
def test_hostile_structures_are_typed_errors(data: bytes) -> None:
    with pytest.raises(MediaError):
        VorbisCommentLabeler().read(io.BytesIO(data))
    with pytest.raises(MediaError):
        VorbisCommentLabeler().write(io.BytesIO(data), io.BytesIO(), make_label().to_json())


def test_multiplexed_ogg_is_refused(tmp_path: Path) -> None:
    data = encode("ogg", "libopus", 48000)
    first_end = 27 + data[26] + sum(data[27 : 27 + data[26]])
    other = bytearray(data[:first_end])
    struct.pack_into("<I", other, 14, 12345)  # another stream's BOS page among the headers
    muxed = data[:first_end] + bytes(other) + data[first_end:]
    with pytest.raises(UnsupportedFormatError):
        VorbisCommentLabeler().write(io.BytesIO(muxed), io.BytesIO(), make_label().to_json())


def test_two_comment_blocks_are_refused() -> None:
    comment = Comments(b"", ()).to_bytes()
    block = b"\x04" + len(comment).to_bytes(3, "big") + comment
    data = b"fLaC" + b"\x00\x00\x00\x22" + bytes(34) + block + bytes([0x84]) + block[1:] + bytes(16)
    with pytest.raises(CorruptMediaError):
        VorbisCommentLabeler().read(io.BytesIO(data))


def test_read_touches_only_the_headers(tmp_path: Path) -> None:
    for src in make_audio(tmp_path):
        out = io.BytesIO()
        VorbisCommentLabeler().write(io.BytesIO(src.read_bytes()), out, make_label().to_json())
        stream = CountingReader(out.getvalue() + bytes(4_000_000))
        assert VorbisCommentLabeler().read(stream) is not None
        assert stream.count < 64 * 1024, src
