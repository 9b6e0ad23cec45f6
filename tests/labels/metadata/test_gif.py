"""GIF: the contract, exiftool and Pillow reading the output, block placement, hostile input."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.gif import MAGIC_TRAILER, GifLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    OTHER_XMP,
    assert_exiftool_reads_label,
    exiftool_tags,
    gradient,
    image_info,
    label_copy,
    read_bytes,
)

XMP_BLOCK = b"\x21\xff\x0bXMP DataXMP" + OTHER_XMP + MAGIC_TRAILER
#: An application extension nobody knows, to be kept byte for byte.
OTHER_APP = b"\x21\xff\x0bUNITTEST1.0" + b"\x05hello\x03abc\x00"


def sub_blocks(data: bytes) -> bytes:
    return (
        b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
        + b"\x00"
    )


def blocks(data: bytes) -> list[bytes]:
    """The header (signature, screen descriptor, colour table), then each block, as bytes."""
    table = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    out, pos = [data[: 13 + table]], 13 + table

    def chain(p: int) -> int:
        while data[p]:
            p += 1 + data[p]
        return p + 1

    while pos < len(data):
        kind = data[pos]
        if kind == 0x3B:
            out.append(data[pos:])
            break
        if kind == 0x21:
            end = chain(pos + 2)
        else:
            flags = data[pos + 9]
            end = chain(pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1)
        out.append(data[pos:end])
        pos = end
    return out


def insert_before_first(data: bytes, kinds: tuple[bytes, ...], new: bytes) -> bytes:
    parts = blocks(data)
    index = next(i for i, b in enumerate(parts) if i and b.startswith(kinds))
    return b"".join(parts[:index]) + new + b"".join(parts[index:])


def make_gifs(folder: Path) -> list[Path]:
    frames = [gradient("P", (24, 16), shift) for shift in (0, 100, 200)]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0, comment=b"a comment"
    )
    rich = folder / "rich.gif"
    rich.write_bytes(insert_before_first(buffer.getvalue(), (b"\x21\xf9", b"\x2c"), OTHER_APP + XMP_BLOCK))

    static = folder / "static87a.gif"
    gradient("L", (20, 12)).save(static, "GIF")

    local = folder / "local-palettes.gif"
    a = gradient("RGB", (16, 16)).quantize(16)
    b = gradient("RGB", (16, 16), 128).convert("L").quantize(8)
    a.save(
        local, "GIF", save_all=True, append_images=[b], duration=50, comment=b"local tables", optimize=False
    )

    transparent = folder / "transparent.gif"
    gradient("P", (30, 20)).save(transparent, "GIF", transparency=3, interlace=True)

    no_trailer = folder / "no-trailer.gif"
    buffer = io.BytesIO()
    gradient("P", (10, 10)).save(buffer, "GIF")
    no_trailer.write_bytes(buffer.getvalue()[:-1])
    return [rich, static, local, transparent, no_trailer]


write = functools.partial(label_copy, GifLabeler())
read = functools.partial(read_bytes, GifLabeler())


def is_xmp(block: bytes) -> bool:
    return block.startswith(b"\x21\xff\x0bXMP DataXMP")


class TestGifContract(MetadataLabelerContract):
    labeler = GifLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_gifs(folder)

    def other_metadata(self, path: Path) -> Any:
        tags = exiftool_tags(path)
        tags.pop("GIF:GIFVersion", None)  # 87a becomes 89a: extensions need it
        return {"pillow": image_info(path), "exiftool": tags}


@pytest.mark.tools
def test_exiftool_reads_the_label(tmp_path: Path) -> None:
    assert_exiftool_reads_label(GifLabeler(), make_gifs(tmp_path), tmp_path, ("rich.gif",))


def test_block_placement_and_byte_identity(tmp_path: Path) -> None:
    label = make_label()
    for src in make_gifs(tmp_path):
        before = blocks(src.read_bytes())
        data = write(src, tmp_path / f"o-{src.name}", label)
        assert data.startswith(b"GIF89a")
        after = blocks(data)
        xmp_at = [i for i, b in enumerate(after) if is_xmp(b)]
        assert len(xmp_at) == 1
        assert after[xmp_at[0]].endswith(MAGIC_TRAILER)
        first_graphic = next(
            i for i, b in enumerate(after) if i and b.startswith((b"\x21\xf9", b"\x2c", b"\x21\x01"))
        )
        assert xmp_at[0] < first_graphic
        if not any(is_xmp(b) for b in before):
            assert xmp_at[0] == first_graphic - 1
        kept = [b for b in after if not is_xmp(b)]
        assert kept[0][6:] == before[0][6:] and kept[1:] == [b for b in before[1:] if not is_xmp(b)]


def test_in_place_and_sub_block_form(tmp_path: Path) -> None:
    src = make_gifs(tmp_path)[0]
    target = tmp_path / "ip.gif"
    target.write_bytes(src.read_bytes())
    label = make_label()
    with target.open("r+b") as fh:
        assert GifLabeler().write_in_place(fh, label.to_json())
    assert target.stat().st_size == src.stat().st_size
    assert AigcLabel.parse(read(target.read_bytes()) or "") == label
    # an XMP extension written as ordinary sub-blocks (no magic trailer) is read and rewritten
    labeler = GifLabeler()
    out = io.BytesIO()
    labeler.write(io.BytesIO(target.read_bytes()), out, label.to_json())
    body = out.getvalue()
    head = body.index(b"\x21\xff\x0bXMP DataXMP")
    start = head + 14
    end = body.index(MAGIC_TRAILER, start)
    sub_block_form = body[:start] + sub_blocks(body[start:end]) + body[end + len(MAGIC_TRAILER) :]
    assert AigcLabel.parse(read(sub_block_form) or "") == label
    other = make_label(ProduceID="00000000000000AB")
    again = io.BytesIO()
    labeler.write(io.BytesIO(sub_block_form), again, other.to_json())
    assert AigcLabel.parse(read(again.getvalue()) or "") == other
    assert again.getvalue().count(b"XMP DataXMP") == 1
    assert b"A title" in again.getvalue()


def test_read_stops_at_the_label(tmp_path: Path) -> None:
    src = make_gifs(tmp_path)[1]
    label = make_label()
    data = write(src, tmp_path / "o.gif", label)
    # the image data after the label is never walked when the label comes first
    broken = data[: data.index(MAGIC_TRAILER) + len(MAGIC_TRAILER)] + b"\x99garbage"
    assert AigcLabel.parse(read(broken) or "") == label


def test_unsupported_and_hostile_input(tmp_path: Path) -> None:
    base = make_gifs(tmp_path)[1].read_bytes()
    label = make_label().to_json()
    labeler = GifLabeler()
    head = blocks(base)[0]
    image = blocks(base)[1]
    cases: dict[str, tuple[bytes, type[MediaError], bool]] = {
        "not a gif": (b"GIF90a" + base[6:], UnsupportedFormatError, True),
        "short screen descriptor": (base[:10], CorruptMediaError, True),
        "colour table past end": (head[:40], CorruptMediaError, True),
        "bad introducer": (head + b"\x99" + base[len(head) :], CorruptMediaError, True),
        "chain past end": (head + b"\x21\xfe\x40abc", CorruptMediaError, True),
        "extension cut": (head + b"\x21", CorruptMediaError, True),
        "descriptor cut": (head + image[:6], CorruptMediaError, True),
        "local table past end": (head + image[:9] + b"\x87", CorruptMediaError, True),
        "no image": (head + b"\x21\xfe\x01a\x00\x3b", CorruptMediaError, False),
        "huge XMP": (
            head + b"\x21\xff\x0bXMP DataXMP" + sub_blocks(b"x" * (17 * 1024 * 1024)) + base[len(head) :],
            MediaLimitError,
            True,
        ),
        "XML bomb": (
            head
            + b"\x21\xff\x0bXMP DataXMP"
            + b'<!DOCTYPE l [<!ENTITY a "AIGC">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
            + MAGIC_TRAILER
            + base[len(head) :],
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
