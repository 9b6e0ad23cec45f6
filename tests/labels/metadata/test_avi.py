"""AVI: the contract, plus ffprobe showing ``AIGC`` as a format tag, ffmpeg decoding every frame,
PyAV reading the same packets, the indexes still pointing at their chunks after ``movi`` moved,
and the OpenDML cases (absolute offsets) refused or absorbed."""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from typing import Any

import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, UnsupportedFormatError
from synthguard.labels.metadata.avi import AviLabeler
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

write = functools.partial(label_copy, AviLabeler())


def chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(fourcc, offset, size)`` of the chunks in ``[start, end)``: a plain walk for checks."""
    found, pos = [], start
    while pos + 8 <= end:
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        found.append((data[pos : pos + 4], pos, size))
        pos += 8 + size + (size & 1)
    return found


def top_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    (size,) = struct.unpack("<I", data[4:8])
    return chunks(data, 12, 8 + size)


def movi_offset(data: bytes) -> int:
    return next(off for cc, off, _ in top_chunks(data) if data[off + 8 : off + 12] == b"movi")


def make_absolute_idx1(data: bytes) -> bytes:
    """The same file with its idx1 offsets made absolute (as some old writers do)."""
    out = bytearray(data)
    movi = movi_offset(data)
    idx1 = next((off, size) for cc, off, size in top_chunks(data) if cc == b"idx1")
    for pos in range(idx1[0] + 8, idx1[0] + 8 + idx1[1], 16):
        (offset,) = struct.unpack_from("<I", out, pos + 8)
        struct.pack_into("<I", out, pos + 8, offset + movi + 8)
    return bytes(out)


@functools.cache
def sample_bytes() -> dict[str, bytes]:
    runs = {
        # mjpeg + PCM, INFO with title and artist, ffmpeg's 1016-byte JUNK reserve before movi
        "mjpeg-pcm.avi": [
            *LAVFI,
            "sine=f=440:sample_rate=8000",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
            "-c:a",
            "pcm_s16le",
            "-metadata",
            "title=A title",
            "-metadata",
            "artist=Someone",
        ],
        # mpeg4 + mp3, no JUNK reserve: movi must move
        "tight.avi": [
            *LAVFI,
            "sine=f=440:sample_rate=22050",
            "-t",
            "1",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libmp3lame",
            "-metadata",
            "title=Tight",
            "-metadata_header_padding",
            "0",
        ],
        # no INFO list at all, no JUNK
        "bare.avi": [
            *LAVFI,
            "sine=f=440:sample_rate=8000",
            "-t",
            "0.5",
            "-c:v",
            "mjpeg",
            "-c:a",
            "pcm_u8",
            "-fflags",
            "+bitexact",
            "-map_metadata",
            "-1",
            "-metadata_header_padding",
            "0",
        ],
    }
    made = ffmpeg_samples(runs)
    made["absolute-idx1.avi"] = make_absolute_idx1(made["tight.avi"])
    return made


def make_avis(folder: Path) -> list[Path]:
    return write_samples(folder, sample_bytes())


def check_idx1(data: bytes) -> None:
    """Every idx1 entry names the chunk found at its offset (relative or absolute)."""
    movi = movi_offset(data)
    idx1 = next((off, size) for cc, off, size in top_chunks(data) if cc == b"idx1")
    entries = [data[p : p + 16] for p in range(idx1[0] + 8, idx1[0] + 8 + idx1[1], 16)]
    base = 0 if struct.unpack("<I", entries[0][8:12])[0] > movi + 8 else movi + 8
    for entry in entries:
        (offset,) = struct.unpack("<I", entry[8:12])
        assert data[base + offset : base + offset + 4] == entry[:4]


class TestAviContract(MetadataLabelerContract):
    labeler = AviLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_avis(folder)

    def other_metadata(self, path: Path) -> Any:
        keys = ("codec_name", "width", "height", "sample_rate", "channels", "nb_frames")
        return tags_and_streams(ffprobe(path), keys)


@pytest.mark.tools
def test_ffprobe_shows_the_label_and_every_frame_decodes(tmp_path: Path) -> None:
    label = make_label()
    for src in make_avis(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        tags = ffprobe(dst)["format"]["tags"]
        assert AigcLabel.parse(tags["AIGC"]) == label
        ffmpeg_decode(dst, xerror=True)
        assert packets(dst) == packets(src)
        data = dst.read_bytes()
        check_idx1(data)
        info = [c for c in top_chunks(data) if data[c[1] + 8 : c[1] + 12] == b"INFO"]
        assert len(info) == 1 and info[0][1] < movi_offset(data)
        if src.name == "mjpeg-pcm.avi":  # the JUNK reserve absorbed the label: movi did not move
            assert movi_offset(data) == movi_offset(src.read_bytes())
            assert len(data) == src.stat().st_size
        else:
            assert movi_offset(data) > movi_offset(src.read_bytes())


def test_relabel_keeps_movi_in_place(tmp_path: Path) -> None:
    src = make_avis(tmp_path)[1]  # tight: the first label moves movi and leaves a reserve
    once, twice = tmp_path / "1.avi", tmp_path / "2.avi"
    write(src, once, make_label())
    longer = make_label(ContentPropagator="001191110102MACQD9K64020001", PropagateID="P" * 40)
    write(once, twice, longer)
    assert movi_offset(twice.read_bytes()) == movi_offset(once.read_bytes())
    assert twice.stat().st_size == once.stat().st_size
    with twice.open("rb") as fh:
        assert AigcLabel.parse(AviLabeler().read(fh) or "") == longer


def strl_junk_to_indx(data: bytes) -> bytes:
    """Turn ffmpeg's super-index placeholder (a JUNK in the first strl) into an ``indx``."""
    pos = data.index(b"JUNK", data.index(b"strl"))
    return data[:pos] + b"indx" + data[pos + 4 :]


def test_opendml_cannot_move_movi(tmp_path: Path) -> None:
    tight = strl_junk_to_indx(sample_bytes()["tight.avi"])
    with pytest.raises(UnsupportedFormatError, match="indx"):
        AviLabeler().write(io.BytesIO(tight), io.BytesIO(), make_label().to_json())
    # with JUNK room before movi nothing moves, so an OpenDML file is labeled
    roomy = strl_junk_to_indx(sample_bytes()["mjpeg-pcm.avi"])
    out = io.BytesIO()
    AviLabeler().write(io.BytesIO(roomy), out, make_label().to_json())
    assert movi_offset(out.getvalue()) == movi_offset(roomy)


def avix(data: bytes) -> bytes:
    """A RIFF AVIX extension holding one copy of the first video chunk."""
    movi = movi_offset(data)
    first = data[movi + 12 : movi + 12 + 8 + struct.unpack("<I", data[movi + 16 : movi + 20])[0]]
    first += b"\x00" * (len(first) & 1)
    movi_list = b"LIST" + struct.pack("<I", 4 + len(first)) + b"movi" + first
    return b"RIFF" + struct.pack("<I", 4 + len(movi_list)) + b"AVIX" + movi_list


def test_avix_extensions_are_payload_and_kept(tmp_path: Path) -> None:
    base = sample_bytes()["mjpeg-pcm.avi"]
    extended = base + avix(base)
    labeler = AviLabeler()
    payload = b"".join(labeler.payload(io.BytesIO(extended)))
    assert payload.endswith(avix(base)[12:])
    out = io.BytesIO()
    labeler.write(io.BytesIO(extended), out, make_label().to_json())
    assert out.getvalue().endswith(avix(base))
    assert b"".join(labeler.payload(io.BytesIO(out.getvalue()))) == payload
    tight = sample_bytes()["tight.avi"]
    with pytest.raises(UnsupportedFormatError, match="AVIX"):
        labeler.write(io.BytesIO(tight + avix(tight)), io.BytesIO(), make_label().to_json())


def test_label_in_hdrl_info_is_replaced_there() -> None:
    base = sample_bytes()["bare.avi"]
    label = make_label()
    info = b"INFO" + b"INAM" + struct.pack("<I", 4) + b"abc\x00"
    info += b"AIGC" + struct.pack("<I", 4) + b"old\x00"
    info_list = b"LIST" + struct.pack("<I", len(info)) + info
    hdrl = next(c for c in top_chunks(base) if base[c[1] + 8 : c[1] + 12] == b"hdrl")
    end = hdrl[1] + 8 + hdrl[2]
    data = bytearray(base[:end] + info_list + base[end:])
    struct.pack_into("<I", data, hdrl[1] + 4, hdrl[2] + len(info_list))
    struct.pack_into("<I", data, 4, len(data) - 8)
    labeler = AviLabeler()
    assert labeler.read(io.BytesIO(bytes(data))) == "old"
    out = io.BytesIO()
    labeler.write(io.BytesIO(bytes(data)), out, label.to_json())
    result = out.getvalue()
    assert result.count(b"AIGC") == 1 and result.count(b"LIST") == data.count(b"LIST")
    assert AigcLabel.parse(labeler.read(io.BytesIO(result)) or "") == label


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:4] + struct.pack("<I", len(d)) + d[8:],  # RIFF size past the end
        lambda d: d[:16] + struct.pack("<I", 0xFFFF_FFF0) + d[20:],  # hdrl past its parent
        lambda d: d.replace(b"movi", b"mova"),  # no movi list
        lambda d: d[:8] + b"AVIX" + d[12:],  # not an AVI form
    ],
)
def test_hostile_structures_are_typed_errors(mutate: Any) -> None:
    data = mutate(sample_bytes()["bare.avi"])
    with pytest.raises(MediaError):
        AviLabeler().write(io.BytesIO(data), io.BytesIO(), make_label().to_json())


def test_info_chunk_past_its_list_is_corrupt() -> None:
    base = sample_bytes()["mjpeg-pcm.avi"]
    pos = base.index(b"INFO") + 4  # first INFO sub-chunk header
    data = base[: pos + 4] + struct.pack("<I", 0x7FFF_FFFF) + base[pos + 8 :]
    with pytest.raises(CorruptMediaError):
        AviLabeler().read(io.BytesIO(data))


def test_in_place_only_when_movi_stays(tmp_path: Path) -> None:
    labeler = AviLabeler()
    roomy, tight = tmp_path / "roomy.avi", tmp_path / "tight.avi"
    roomy.write_bytes(sample_bytes()["mjpeg-pcm.avi"])
    tight.write_bytes(sample_bytes()["tight.avi"])
    label = make_label()
    with roomy.open("r+b") as fh:
        assert labeler.write_in_place(fh, label.to_json())
    assert roomy.stat().st_size == len(sample_bytes()["mjpeg-pcm.avi"])
    assert AigcLabel.parse(ffprobe(roomy)["format"]["tags"]["AIGC"]) == label
    original = tmp_path / "original.avi"
    original.write_bytes(sample_bytes()["mjpeg-pcm.avi"])
    assert packets(roomy) == packets(original)
    with tight.open("r+b") as fh:
        assert not labeler.write_in_place(fh, label.to_json())
    assert tight.read_bytes() == sample_bytes()["tight.avi"]
