"""WebP: the contract, exiftool and Pillow reading the output, VP8X conversion, variants, hostile input."""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.webp import WebpLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    OTHER_XMP,
    SRGB,
    RecordingFile,
    assert_exiftool_reads_label,
    copy_modes,
    exif_bytes,
    exiftool_tags,
    gradient,
    image_info,
    label_copy,
    read_bytes,
    user_comment_exif,
)

#: The exiftool tag a label write changes on purpose: the VP8X flags (XMP set; a simple file gains them).
_CHANGED_BY_CONVERSION = {"RIFF:WebP_Flags"}


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 12
    end = 8 + struct.unpack("<I", data[4:8])[0]
    while pos < end:
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def pack(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def save(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, "WEBP", **options)
    return path


def make_webps(folder: Path) -> list[Path]:
    samples = [
        save(
            gradient("RGB"),
            folder / "rich.webp",
            quality=80,
            exif=exif_bytes(),
            icc_profile=SRGB,
            xmp=OTHER_XMP,
        ),
        save(gradient("RGB"), folder / "lossy.webp", quality=70),
        save(gradient("RGB"), folder / "lossless.webp", lossless=True),
        save(gradient("RGBA"), folder / "lossless-alpha.webp", lossless=True),
        save(gradient("RGBA"), folder / "lossy-alpha.webp", quality=75),
        save(gradient("RGB"), folder / "icc.webp", quality=75, icc_profile=SRGB),
    ]
    frames = [gradient("RGBA", (24, 16), shift) for shift in (0, 120)]
    animated = folder / "animated.webp"
    frames[0].save(
        animated, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=3, lossless=True
    )
    samples.append(animated)
    return samples + copy_modes(folder, ("F.webp", "HSV.webp", "I.webp", "LAB.webp", "PA.webp"))


write = functools.partial(label_copy, WebpLabeler())
read = functools.partial(read_bytes, WebpLabeler())


class TestWebpContract(MetadataLabelerContract):
    labeler = WebpLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_webps(folder)

    def other_metadata(self, path: Path) -> Any:
        tags = {k: v for k, v in exiftool_tags(path).items() if k not in _CHANGED_BY_CONVERSION}
        return {"pillow": image_info(path), "exiftool": tags}


@pytest.mark.tools
def test_exiftool_reads_the_label(tmp_path: Path) -> None:
    assert_exiftool_reads_label(WebpLabeler(), make_webps(tmp_path), tmp_path, ("rich.webp",))


def test_extended_layout(tmp_path: Path) -> None:
    label = make_label()
    for src in make_webps(tmp_path):
        before = riff_chunks(src.read_bytes())
        data = write(src, tmp_path / f"o-{src.name}", label)
        after = riff_chunks(data)
        assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
        fourccs = [f for f, _ in after]
        assert fourccs[0] == b"VP8X" and fourccs.count(b"XMP ") == 1
        assert fourccs[-1] == b"XMP " or b"XMP " in [f for f, _ in before]
        order = [b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L", b"EXIF", b"XMP "]
        ranks = [order.index(f) for f in fourccs]
        assert ranks == sorted(ranks) or b"ALPH" in fourccs, fourccs  # ALPH/VP8 order is their own
        flags = after[0][1][0]
        width = int.from_bytes(after[0][1][4:7], "little") + 1
        height = int.from_bytes(after[0][1][7:10], "little") + 1
        with Image.open(src) as im:
            assert (width, height) == im.size
            has_alpha = im.mode == "RGBA"
        assert flags & 0x04
        assert bool(flags & 0x10) == has_alpha, src.name
        assert [
            c for c in after if c[0] in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF", b"ANIM", b"ICCP", b"EXIF")
        ] == [c for c in before if c[0] in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF", b"ANIM", b"ICCP", b"EXIF")]


def test_unpadded_last_chunk_and_trailing_bytes(tmp_path: Path) -> None:
    data = save(gradient("RGB", (6, 5)), tmp_path / "odd.webp", lossless=True).read_bytes()
    chunks = riff_chunks(data)
    assert len(chunks) == 1 and len(chunks[0][1]) % 2 == 1, "the sample needs an odd VP8L chunk"
    unpadded = riff(pack(b"VP8L", chunks[0][1]))[:-1]
    unpadded = unpadded[:4] + struct.pack("<I", len(unpadded) - 8) + unpadded[8:] + b"TRAILING"
    src = tmp_path / "unpadded.webp"
    src.write_bytes(unpadded)
    label = make_label()
    out = write(src, tmp_path / "out.webp", label)
    assert out.endswith(b"TRAILING")
    assert AigcLabel.parse(read(out) or "") == label
    riff_end = 8 + struct.unpack("<I", out[4:8])[0]
    assert riff_chunks(out[:riff_end])[-1][0] == b"XMP "
    with Image.open(tmp_path / "out.webp") as im, Image.open(tmp_path / "odd.webp") as original:
        assert im.tobytes() == original.tobytes()


def test_in_place_with_padding(tmp_path: Path) -> None:
    src = make_webps(tmp_path)[0]
    target = tmp_path / "ip.webp"
    target.write_bytes(src.read_bytes())
    label = make_label()
    with target.open("r+b") as fh:
        assert WebpLabeler().write_in_place(fh, label.to_json())
    assert target.stat().st_size == src.stat().st_size
    assert AigcLabel.parse(read(target.read_bytes()) or "") == label
    simple = tmp_path / "simple.webp"
    simple.write_bytes(make_webps(tmp_path)[1].read_bytes())
    with simple.open("r+b") as fh:
        assert not WebpLabeler().write_in_place(fh, label.to_json())


def test_reads_exif_user_comment(tmp_path: Path) -> None:
    label = make_label()
    path = save(gradient("RGB"), tmp_path / "exif.webp", exif=user_comment_exif(label))
    assert AigcLabel.parse(read(path.read_bytes()) or "") == label
    # with the JPEG "Exif\0\0" prefix that some writers keep
    chunks = riff_chunks(path.read_bytes())
    prefixed = riff(*[pack(f, b"Exif\x00\x00" + d if f == b"EXIF" else d) for f, d in chunks])
    assert AigcLabel.parse(read(prefixed) or "") == label


def test_read_touches_only_headers_and_metadata(tmp_path: Path) -> None:
    noisy = Image.effect_noise((200, 200), 80).convert("RGB")
    path = save(noisy, tmp_path / "noisy.webp", lossless=True, xmp=OTHER_XMP, exif=exif_bytes())
    data = path.read_bytes()
    recording = RecordingFile(data)
    assert WebpLabeler().read(recording) is None
    pos = 12
    while pos < len(data):
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        if fourcc == b"VP8L":
            assert not recording.touched(pos + 8, pos + 8 + size)
        pos += 8 + size + (size & 1)


def test_unsupported_and_hostile_input(tmp_path: Path) -> None:
    base = make_webps(tmp_path)[1].read_bytes()
    vp8 = riff_chunks(base)[0][1]
    label = make_label().to_json()
    labeler = WebpLabeler()
    not_keyframe = bytes([vp8[0] | 1]) + vp8[1:]
    zero_width = vp8[:6] + b"\x00\x00" + vp8[8:]
    cases: dict[str, tuple[bytes, type[MediaError], bool]] = {
        "wave": (b"RIFF\x04\x00\x00\x00WAVE", UnsupportedFormatError, True),
        "riff too big": (base[:4] + struct.pack("<I", len(base)) + base[8:], CorruptMediaError, True),
        "riff tiny": (base[:4] + struct.pack("<I", 4) + base[8:], CorruptMediaError, True),
        "chunk past riff": (riff(b"VP8 " + struct.pack("<I", 10**6) + vp8), CorruptMediaError, True),
        "unknown first chunk": (riff(pack(b"JUNK", b"ab"), pack(b"VP8 ", vp8)), CorruptMediaError, False),
        "not a key frame": (riff(pack(b"VP8 ", not_keyframe)), CorruptMediaError, False),
        "zero width": (riff(pack(b"VP8 ", zero_width)), CorruptMediaError, False),
        "bad VP8L": (riff(pack(b"VP8L", b"\x00" * 8)), CorruptMediaError, False),
        "short VP8X": (riff(pack(b"VP8X", b"\x00"), pack(b"VP8 ", vp8)), CorruptMediaError, False),
        "too many chunks": (riff(pack(b"VP8 ", vp8), pack(b"JUNK", b"") * 100_001), MediaLimitError, True),
        "huge XMP": (
            riff(pack(b"VP8X", bytes(10)), pack(b"VP8 ", vp8), b"XMP " + struct.pack("<I", 2**30)),
            CorruptMediaError,
            True,
        ),
        "XML bomb": (
            riff(
                pack(b"VP8X", bytes(10)),
                pack(b"VP8 ", vp8),
                pack(
                    b"XMP ",
                    b'<!DOCTYPE l [<!ENTITY a "AIGC">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>',
                ),
            ),
            MediaError,
            True,
        ),
    }
    for name, (data, error, on_read) in cases.items():
        with pytest.raises(error):
            labeler.write(io.BytesIO(data), io.BytesIO(), label)
        if on_read:
            with pytest.raises(error):
                labeler.read(io.BytesIO(data))
        else:
            assert labeler.read(io.BytesIO(data)) is None, name
