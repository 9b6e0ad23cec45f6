"""JPEG: the contract, plus exiftool reading the label and the variants seen in the wild."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from synthguard.aigc import AigcLabel
from synthguard.labels.metadata.jpeg import XMP_ID, JpegLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    copy_modes,
    exiftool_record,
    image_metadata,
    label_copy,
    user_comment_exif,
    xmp_packet,
)

OTHER_XMP = xmp_packet(200)


def insert_app1(jpeg: bytes, body: bytes) -> bytes:
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return jpeg[:2] + segment + jpeg[2:]


def make_jpegs(folder: Path) -> list[Path]:
    image = Image.new("RGB", (64, 48), (200, 30, 40))
    for x in range(64):
        image.putpixel((x, x % 48), (x * 4, 255 - x * 4, 90))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "UnitCam"
    icc = b"\x00\x00\x02\x0cfake-icc-profile" + bytes(200)
    rich = folder / "rich.jpg"
    image.save(rich, "JPEG", quality=85, exif=exif.tobytes(), icc_profile=icc)
    with_xmp = folder / "with-xmp.jpg"
    with_xmp.write_bytes(insert_app1(rich.read_bytes(), XMP_ID + OTHER_XMP))
    plain = folder / "plain.jpg"
    buffer = io.BytesIO()
    image.convert("L").save(buffer, "JPEG", progressive=True)
    plain.write_bytes(buffer.getvalue())
    return [rich, with_xmp, plain, *copy_modes(folder, ("CMYK.jpg", "YCbCr.jpg", "original.jpg"))]


class TestJpegContract(MetadataLabelerContract):
    labeler = JpegLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_jpegs(folder)

    def other_metadata(self, path: Path) -> Any:
        return image_metadata(path)


@pytest.mark.tools
def test_exiftool_reads_the_label(tmp_path: Path) -> None:
    label = make_label()
    for src in make_jpegs(tmp_path)[:2]:
        dst = tmp_path / f"out-{src.name}"
        label_copy(JpegLabeler(), src, dst, label)
        record = exiftool_record(dst, "-XMP-TC260:AIGC", "-XMP-dc:Title", "-Orientation#")
        assert AigcLabel.parse(record["Aigc"]) == label
        assert record["Orientation"] == 6
        if src.name == "with-xmp.jpg":
            assert record["Title"] == "A title"


def test_reads_attribute_form_and_exif_user_comment(tmp_path: Path) -> None:
    label = make_label()
    base = make_jpegs(tmp_path)[2].read_bytes()
    attr = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        'xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/" TC260:AIGC=\''
        + label.to_json()
        + "'/></rdf:RDF></x:xmpmeta>"
    ).encode()
    f = io.BytesIO(insert_app1(base, XMP_ID + attr))
    assert AigcLabel.parse(JpegLabeler().read(f) or "") == label

    image = Image.new("RGB", (16, 16))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=user_comment_exif(label))
    buffer.seek(0)
    assert AigcLabel.parse(JpegLabeler().read(buffer) or "") == label


def test_hostile_xmp_is_refused(tmp_path: Path) -> None:
    from synthguard.errors import MediaError

    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b; AIGC</x:xmpmeta>'
    )
    base = make_jpegs(tmp_path)[2].read_bytes()
    data = insert_app1(base, XMP_ID + bomb)
    with pytest.raises(MediaError):
        JpegLabeler().read(io.BytesIO(data))
    with pytest.raises(MediaError):
        JpegLabeler().write(io.BytesIO(data), io.BytesIO(), make_label().to_json())
