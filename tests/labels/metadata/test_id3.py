"""MP3 (ID3v2 TXXX:AIGC): the contract, ffprobe/exiftool reading the label, versions kept, hostile tags."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from mutagen.apev2 import APEv2
from mutagen.id3 import APIC, COMM, ID3, TDAT, TIT2, TPE1, TXXX, TYER, ID3NoHeaderError

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError
from synthguard.labels.metadata.id3 import Id3Labeler, read_id3v2_header
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import CountingReader, decode_pcm, exiftool_record, ffprobe, label_copy, tiny_png


def encode_mp3(seconds: float = 0.3) -> bytes:
    """A short mono MP3 (LAME through PyAV), with the ID3v2.4 tag FFmpeg writes."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as out:
        out.metadata.update({"title": "Tone", "artist": "Unit"})
        stream = out.add_stream("libmp3lame", rate=22050, layout="mono")
        rate, size = 22050, stream.codec_context.frame_size or 1152
        t = np.arange(int(rate * seconds)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for pts in range(0, len(tone), size):
            frame = av.AudioFrame.from_ndarray(
                tone[None, pts : pts + size].copy(), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, pts
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def strip_id3v2(data: bytes) -> bytes:
    header = read_id3v2_header(io.BytesIO(data))
    return data[header.end :] if header else data


def make_mp3s(folder: Path) -> list[Path]:
    audio = strip_id3v2(encode_mp3())
    rich = folder / "rich-v24.mp3"
    rich.write_bytes(audio)
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["Tone ü"]))
    tags.add(TPE1(encoding=3, text=["Unit"]))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=["a comment"]))
    tags.add(TXXX(encoding=3, desc="Other", text=["kept"]))
    tags.add(APIC(encoding=0, mime="image/png", type=3, desc="cover", data=tiny_png()))
    tags.save(rich, v1=2, v2_version=4)  # with an ID3v1 tag at the end
    old = folder / "old-v23-ape.mp3"
    old.write_bytes(audio)
    tags = ID3()
    tags.add(TIT2(encoding=1, text=["Old"]))
    tags.add(TYER(encoding=0, text=["2020"]))
    tags.add(TDAT(encoding=0, text=["0304"]))
    tags.save(old, v1=0, v2_version=3)
    ape = APEv2()
    ape["Title"] = "ape title"
    ape.save(old)
    bare = folder / "bare.mp3"
    bare.write_bytes(audio)
    return [rich, old, bare]


def mp3_metadata(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    try:
        tags = ID3(path, load_v1=False, translate=False)
    except ID3NoHeaderError:
        frames: dict[str, str] = {}
        version = None
    else:
        frames = {k: repr(v) for k, v in tags.items() if k.upper() != "TXXX:AIGC"}
        version = tags.version[:2]
    return {
        "frames": frames,
        "version": version if frames else None,  # a new tag is made for the label alone
        "v1": data[-128:] if data[-128:-125] == b"TAG" else None,
        "ape": b"APETAGEX" in data[-512:],
    }


class TestId3Contract(MetadataLabelerContract):
    labeler = Id3Labeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_mp3s(folder)

    def other_metadata(self, path: Path) -> Any:
        return mp3_metadata(path)


label_file = functools.partial(label_copy, Id3Labeler())


@pytest.mark.tools
def test_ffprobe_and_exiftool_read_the_label_and_audio_is_unchanged(tmp_path: Path) -> None:
    label = make_label()
    for src in make_mp3s(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        label_file(src, dst, label)
        tags = ffprobe(dst, "-show_entries", "format_tags")["format"]["tags"]
        assert AigcLabel.parse(tags["AIGC"]) == label
        record = exiftool_record(dst, "-UserDefinedText")
        texts = record["UserDefinedText"]
        texts = texts if isinstance(texts, list) else [texts]
        assert f"(AIGC) {label.to_json()}" in texts
        assert decode_pcm(dst) == decode_pcm(src)


def test_versions_and_old_frames_are_kept(tmp_path: Path) -> None:
    rich, old, bare = make_mp3s(tmp_path)
    for src, version in ((rich, (2, 4)), (old, (2, 3)), (bare, (2, 3))):
        dst = tmp_path / f"v-{src.name}"
        label_file(src, dst, make_label())
        assert ID3(dst).version[:2] == version
    tags = ID3(tmp_path / f"v-{old.name}", translate=False)
    assert str(tags["TYER"]) == "2020"
    assert str(tags["TDAT"]) == "0304"


def test_v22_tag_becomes_v23(tmp_path: Path) -> None:
    frame = b"\x00" + b"Old two"
    body = b"TT2" + len(frame).to_bytes(3, "big") + frame
    tag = b"ID3\x02\x00\x00" + bytes([0, 0, 0, len(body) + 20]) + body + bytes(20)
    src = tmp_path / "v22.mp3"
    src.write_bytes(tag + strip_id3v2(encode_mp3(0.1)))
    dst = tmp_path / "out.mp3"
    label = make_label()
    label_file(src, dst, label)
    tags = ID3(dst)
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Old two"
    assert AigcLabel.parse(str(tags["TXXX:AIGC"])) == label


def test_payload_excludes_trailing_tags(tmp_path: Path) -> None:
    rich, old, _ = make_mp3s(tmp_path)
    for path in (rich, old):
        with path.open("rb") as fh:
            payload = b"".join(Id3Labeler().payload(fh))
        assert b"TAG" not in payload[-128:]
        assert b"APETAGEX" not in payload


def test_other_case_description_is_read_and_replaced(tmp_path: Path) -> None:
    src = tmp_path / "lower.mp3"
    src.write_bytes(strip_id3v2(encode_mp3(0.1)))
    old = make_label()
    tags = ID3()
    tags.add(TXXX(encoding=3, desc="aigc", text=[old.to_json()]))
    tags.save(src)
    with src.open("rb") as fh:
        assert Id3Labeler().read(fh) == old.to_json()
    dst = tmp_path / "out.mp3"
    new = make_label()
    label_file(src, dst, new)
    assert [f.desc for f in ID3(dst).getall("TXXX")] == ["AIGC"]


@pytest.mark.parametrize(
    "data",
    [
        b"ID3\x03\x00\x00\x00\x00\x7f\x7f" + bytes(64),  # size past the end of the file
        b"ID3\x03\x00\x00\x00\x80\x00\x00" + bytes(64),  # not synchsafe
        b"ID3\x05\x00\x00\x00\x00\x00\x10" + bytes(64),  # no such version
        b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + bytes(64),  # 256 MB: over the limit
        b"ID3\x03\x00\x00\x00",  # truncated header
    ],
)
def test_hostile_headers_are_typed_errors(data: bytes) -> None:
    with pytest.raises(MediaError):
        Id3Labeler().read(io.BytesIO(data))
    with pytest.raises(MediaError):
        Id3Labeler().write(io.BytesIO(data), io.BytesIO(), make_label().to_json())


def test_garbage_frames_do_not_crash() -> None:
    body = b"TXXX\x7f\xff\xff\xff\x00\x00" + b"\xff" * 40
    data = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(body)]) + body + b"\xff\xfb\x90\x00" + bytes(400)
    try:
        found = Id3Labeler().read(io.BytesIO(data))
    except CorruptMediaError:
        found = None
    assert found is None


def test_read_touches_only_the_tag(tmp_path: Path) -> None:
    src = make_mp3s(tmp_path)[0]
    out = io.BytesIO()
    Id3Labeler().write(io.BytesIO(src.read_bytes()), out, make_label().to_json())
    stream = CountingReader(out.getvalue() + bytes(4_000_000))
    assert Id3Labeler().read(stream) is not None
    assert stream.count < 64 * 1024
