"""WAV: the contract, plus PyAV decoding identical samples, a plain chunk walk finding exactly one
``AIGC`` chunk, exiftool still reading the INFO and ID3 tags, and hostile RIFF structures."""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from typing import Any

import av
import mutagen.id3
import mutagen.wave
import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.wav import WavLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import exiftool_record, ffmpeg_decode, ffmpeg_samples, label_copy, write_samples


def chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def riff(chunks: bytes, size: int | None = None) -> bytes:
    return b"RIFF" + struct.pack("<I", len(chunks) + 4 if size is None else size) + b"WAVE" + chunks


FMT_U8 = chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8))


def add_id3(name: str, path: Path) -> None:
    """Append an id3 chunk (mutagen) to the odd-sized sample."""
    if name != "odd-id3.wav":
        return
    tagged = mutagen.wave.WAVE(path)
    tagged.add_tags()
    assert tagged.tags is not None
    tagged.tags.add(mutagen.id3.TIT2(encoding=3, text=["ID3 title"]))
    tagged.tags.add(mutagen.id3.TPE1(encoding=3, text=["ID3 artist"]))
    tagged.save()


@functools.cache
def sample_bytes() -> dict[str, bytes]:
    runs = {
        # fmt, bext, LIST INFO, data
        "rich.wav": [
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:sample_rate=8000",
            "-t",
            "0.2",
            "-c:a",
            "pcm_s16le",
            "-write_bext",
            "1",
            "-metadata",
            "title=A title",
            "-metadata",
            "artist=Someone",
            "-metadata",
            "comment=hi",
        ],
        # 8-bit mono, odd data size, then an id3 chunk (mutagen)
        "odd-id3.wav": [
            "-f",
            "lavfi",
            "-i",
            "sine=f=300:sample_rate=8000",
            "-af",
            "atrim=end_sample=1001",
            "-c:a",
            "pcm_u8",
            "-metadata",
            "title=Odd",
        ],
    }
    made = ffmpeg_samples(runs, finish=add_id3)
    samples = bytes((i * 7) % 256 for i in range(1001))
    # hand-made: data last, odd, without its pad byte; RIFF size counts the missing pad byte
    body = FMT_U8 + b"data" + struct.pack("<I", len(samples)) + samples
    made["nopad.wav"] = riff(body, len(body) + 5)
    info = b"INFO" + chunk(b"INAM", b"After data\x00") + chunk(b"IART", b"Tail\x00")
    made["info-after.wav"] = riff(FMT_U8 + chunk(b"data", samples) + chunk(b"LIST", info))
    return made


def make_wavs(folder: Path) -> list[Path]:
    return write_samples(folder, sample_bytes())


def chunk_ids(path: Path) -> list[bytes]:
    """A plain walk of the top-level chunks (independent of the labeler's code)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    (size,) = struct.unpack("<I", data[4:8])
    end = min(8 + size, len(data))
    ids, pos = [], 12
    while pos + 8 <= end:
        (n,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        ids.append(data[pos : pos + 4])
        pos += 8 + n + (n & 1)
    assert pos >= end, "chunks do not fill the RIFF form"
    return ids


def wav_tags(path: Path) -> dict[str, Any]:
    """The RIFF and ID3 tags exiftool reads."""
    record = exiftool_record(path, "-G1", "-RIFF:all", "-ID3:all", "-ID3v2_4:all")
    record.pop("SourceFile")
    return record


def decoded(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(plane) for frame in container.decode(audio=0) for plane in frame.planes]


write = functools.partial(label_copy, WavLabeler())


class TestWavContract(MetadataLabelerContract):
    labeler = WavLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_wavs(folder)

    def other_metadata(self, path: Path) -> Any:
        return wav_tags(path)


@pytest.mark.tools
def test_independent_readers_see_one_chunk_and_the_same_audio(tmp_path: Path) -> None:
    label = make_label()
    for src in make_wavs(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        ids = chunk_ids(dst)
        assert ids.count(b"AIGC") == 1
        assert ids.index(b"AIGC") > ids.index(b"data")  # after the audio: the samples never move
        assert ids[: ids.index(b"AIGC")] + ids[ids.index(b"AIGC") + 1 :] == chunk_ids(src)
        data = dst.read_bytes()
        pos = data.index(b"AIGC")
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        assert AigcLabel.parse(data[pos + 8 : pos + 8 + size]) == label
        assert decoded(dst) == decoded(src)
        tags = wav_tags(dst)
        if src.name == "rich.wav":
            assert tags["RIFF:Title"] == "A title" and tags["RIFF:Artist"] == "Someone"
        if src.name == "odd-id3.wav":
            assert "ID3 title" in tags.values()
        ffmpeg_decode(dst)


def test_relabel_replaces_the_chunk_where_it_is(tmp_path: Path) -> None:
    src = make_wavs(tmp_path)[0]
    once, twice = tmp_path / "1.wav", tmp_path / "2.wav"
    write(src, once, make_label())
    longer = make_label(ContentPropagator="001191110102MACQD9K64020001", PropagateID="X" * 40)
    write(once, twice, longer)
    assert chunk_ids(twice) == chunk_ids(once)
    with twice.open("rb") as fh:
        assert AigcLabel.parse(WavLabeler().read(fh) or "") == longer


def test_in_place(tmp_path: Path) -> None:
    src = make_wavs(tmp_path)[0]
    target = tmp_path / "t.wav"
    target.write_bytes(src.read_bytes())
    label = make_label()
    with target.open("r+b") as fh:
        assert WavLabeler().write_in_place(fh, label.to_json())
    assert chunk_ids(target) == [*chunk_ids(src), b"AIGC"]
    grown = make_label(PropagateID="Y" * 30)
    with target.open("r+b") as fh:  # the label is the last chunk: it may grow in place
        assert WavLabeler().write_in_place(fh, grown.to_json())
    assert chunk_ids(target).count(b"AIGC") == 1
    with target.open("rb") as fh:
        assert AigcLabel.parse(WavLabeler().read(fh) or "") == grown
    assert decoded(target) == decoded(src)
    # bytes after the RIFF form: the label can no longer be appended in place
    trailing = tmp_path / "trailing.wav"
    trailing.write_bytes(src.read_bytes() + b"trailing garbage")
    with trailing.open("r+b") as fh:
        assert not WavLabeler().write_in_place(fh, label.to_json())
    assert trailing.read_bytes() == src.read_bytes() + b"trailing garbage"


def test_trailing_bytes_after_the_form_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "t.wav"
    src.write_bytes(sample_bytes()["info-after.wav"] + b"XYZ")
    dst = tmp_path / "o.wav"
    write(src, dst, make_label())
    assert dst.read_bytes().endswith(b"XYZ")
    assert chunk_ids(dst)[-1] == b"AIGC"


def test_reads_info_variant() -> None:
    label = make_label()
    info = b"INFO" + chunk(b"AIGC", label.to_json().encode() + b"\x00")
    data = riff(FMT_U8 + chunk(b"LIST", info) + chunk(b"data", b"\x80" * 10))
    assert AigcLabel.parse(WavLabeler().read(io.BytesIO(data)) or "") == label


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (b"RF64" + bytes(40), UnsupportedFormatError),
        (b"RIFX" + bytes(40), UnsupportedFormatError),
        (riff(FMT_U8 + chunk(b"data", b"\x80" * 10), size=0xFFFF_FFFF), CorruptMediaError),
        (riff(FMT_U8 + chunk(b"data", b"\x80" * 10), size=2), CorruptMediaError),
        (riff(FMT_U8 + b"data" + struct.pack("<I", 0xFFFF_FFF0) + b"\x80" * 10), CorruptMediaError),
        (riff(FMT_U8 + chunk(b"LIST", b"IN")), CorruptMediaError),
    ],
)
def test_hostile_structures_are_typed_errors(blob: bytes, error: type[MediaError]) -> None:
    with pytest.raises(error):
        WavLabeler().read(io.BytesIO(blob))
    with pytest.raises(error):
        WavLabeler().write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())


def test_no_data_chunk_and_huge_label_are_refused() -> None:
    no_data = riff(FMT_U8)
    with pytest.raises(CorruptMediaError):
        WavLabeler().write(io.BytesIO(no_data), io.BytesIO(), make_label().to_json())
    huge = riff(FMT_U8 + chunk(b"data", b"\x80" * 4) + chunk(b"AIGC", b" " * ((1 << 20) + 2)))
    with pytest.raises(MediaLimitError):
        WavLabeler().read(io.BytesIO(huge))
