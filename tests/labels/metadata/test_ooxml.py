"""docx, xlsx, pptx (docProps/custom.xml property AIGC): the contract, zipfile and exiftool reading the
output, members copied raw, and hostile archives (zip bomb, XML entities, ZIP64, broken directories)."""

from __future__ import annotations

import functools
import io
import struct
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.ooxml import OoxmlLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import CountingReader, exiftool_record, label_bytes, write_samples

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CUSTOM_REL = f"{OFFICE_REL}/custom-properties"
CUSTOM_TYPE = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
MAIN = {
    "docx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}
BODY = {
    "docx": '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p>'
    "<w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>",
    "xlsx": '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>',
    "pptx": '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
}
CORE = (
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>A title</dc:title><dc:creator>Unit</dc:creator>'
    "</cp:coreProperties>"
)
CUSTOM = (
    f'<Properties xmlns="{CUSTOM_NS}" xmlns:vt="{VT_NS}">'
    '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Department">'
    "<vt:lpwstr>Research &amp; Development</vt:lpwstr></property>"
    '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="5" name="Count">'
    "<vt:i4>42</vt:i4></property>"
    "</Properties>"
)


def package(
    kind: str, *, custom: str | None = None, custom_part: str = "docProps/custom.xml"
) -> dict[str, str]:
    main, main_type = MAIN[kind]
    overrides = [
        (main, main_type),
        ("docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
    ]
    rels = [
        ("rId1", f"{OFFICE_REL}/officeDocument", main),
        (
            "rId2",
            "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
            "docProps/core.xml",
        ),
    ]
    parts = {main: DECL + BODY[kind], "docProps/core.xml": DECL + CORE}
    if custom is not None:
        overrides.append((custom_part, CUSTOM_TYPE))
        rels.append(("rId7", CUSTOM_REL, custom_part))
        parts[custom_part] = DECL + custom
    types = "".join(f'<Override PartName="/{n}" ContentType="{t}"/>' for n, t in overrides)
    relations = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{n}"/>' for i, t, n in rels)
    return {
        "[Content_Types].xml": f'{DECL}<Types xmlns="{CT_NS}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{types}</Types>',
        "_rels/.rels": f'{DECL}<Relationships xmlns="{RELS_NS}">{relations}</Relationships>',
        **parts,
    }


class Unseekable(io.RawIOBase):
    """Makes zipfile write data descriptors, as streaming writers do."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.buffer.write(data)


def zip_bytes(parts: dict[str, str], method: int = zipfile.ZIP_DEFLATED, streamed: bool = False) -> bytes:
    target: Any = Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(target, "w", method) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return target.buffer.getvalue() if streamed else target.getvalue()


def make_packages(folder: Path) -> list[Path]:
    files = {
        "plain.docx": zip_bytes(package("docx")),
        "stored.xlsx": zip_bytes(package("xlsx"), zipfile.ZIP_STORED),
        "plain.pptx": zip_bytes(package("pptx")),
        "custom-streamed.docx": zip_bytes(package("docx", custom=CUSTOM), streamed=True),
    }
    return write_samples(folder, files)


EDITED = {"[Content_Types].xml", "_rels/.rels", "docProps/custom.xml"}


def custom_properties(archive: zipfile.ZipFile) -> list[ET.Element]:
    if "docProps/custom.xml" not in archive.namelist():
        return []
    return list(ET.fromstring(archive.read("docProps/custom.xml")))


def package_metadata(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        members = {
            i.filename: (i.CRC, i.compress_size, i.compress_type)
            for i in archive.infolist()
            if i.filename not in EDITED
        }
        title = ET.fromstring(archive.read("docProps/core.xml")).find(
            "{http://purl.org/dc/elements/1.1/}title"
        )
        types = ET.fromstring(archive.read("[Content_Types].xml"))
        rels = ET.fromstring(archive.read("_rels/.rels"))
        return {
            "members": members,
            "title": None if title is None else title.text,
            "custom": [ET.tostring(p) for p in custom_properties(archive) if p.get("name") != "AIGC"],
            "types": sorted(
                str(sorted(e.attrib.items())) for e in types if e.get("ContentType") != CUSTOM_TYPE
            ),
            "rels": sorted(str(sorted(e.attrib.items())) for e in rels if e.get("Type") != CUSTOM_REL),
        }


class TestOoxmlContract(MetadataLabelerContract):
    labeler = OoxmlLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_packages(folder)

    def other_metadata(self, path: Path) -> Any:
        return package_metadata(path)

    def count_labels(self, path: Path) -> int:
        # custom.xml is deflated: count the properties, not raw bytes
        with zipfile.ZipFile(path) as archive:
            return sum(p.get("name") == "AIGC" for p in custom_properties(archive))


write = functools.partial(label_bytes, OoxmlLabeler())


def raw_members(data: bytes) -> dict[str, bytes]:
    """Each member's compressed bytes, read through the local headers."""
    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
            start = info.header_offset + 30 + name_length + extra_length
            found[info.filename] = data[start : start + info.compress_size]
    return found


@pytest.mark.tools
def test_exiftool_reads_the_label_and_members_are_copied_raw(tmp_path: Path) -> None:
    label = make_label()
    for src in make_packages(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        dst.write_bytes(write(src.read_bytes(), label.to_json()))
        record = exiftool_record(dst, "-G1")
        assert AigcLabel.parse(record["XML:AIGC"]) == label
        assert record["XMP-dc:Title"] == "A title"
        if "custom" in src.name:
            assert record["XML:Department"] == "Research & Development"
            assert record["XML:Count"] == 42
        with zipfile.ZipFile(dst) as archive:
            assert archive.testzip() is None
            for prop in custom_properties(archive):
                if prop.get("name") == "AIGC":
                    assert prop[0].tag == f"{{{VT_NS}}}lpwstr"
                    assert int(prop.get("pid", "0")) >= 2
            pids = [p.get("pid") for p in custom_properties(archive)]
            assert len(set(pids)) == len(pids)
        before, after = raw_members(src.read_bytes()), raw_members(dst.read_bytes())
        for name, data in before.items():
            if name not in EDITED:
                assert after[name] == data, name


def test_new_pid_follows_the_largest_and_relabel_keeps_it() -> None:
    data = write(zip_bytes(package("docx", custom=CUSTOM)), make_label().to_json())
    again = write(data, make_label().to_json())
    with zipfile.ZipFile(io.BytesIO(again)) as archive:
        props = {p.get("name"): p.get("pid") for p in custom_properties(archive)}
    assert props == {"Department": "2", "Count": "5", "AIGC": "6"}


def test_custom_part_where_the_relationship_points() -> None:
    src = zip_bytes(package("docx", custom=CUSTOM, custom_part="docProps/custom2.xml"))
    label = make_label()
    out = write(src, label.to_json())
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert "docProps/custom.xml" not in archive.namelist()
        names = [p.get("name") for p in ET.fromstring(archive.read("docProps/custom2.xml"))]
        assert names == ["Department", "Count", "AIGC"]
        assert archive.read("[Content_Types].xml") == zipfile.ZipFile(io.BytesIO(src)).read(
            "[Content_Types].xml"
        )
    assert OoxmlLabeler().read(io.BytesIO(out)) == label.to_json()


def test_prefixed_roots_and_empty_custom_part() -> None:
    parts = package("docx", custom=f'<op:Properties xmlns:op="{CUSTOM_NS}" xmlns:vt="{VT_NS}"/>')
    parts["[Content_Types].xml"] = (
        parts["[Content_Types].xml"]
        .replace("<Types ", "<ct:Types ")
        .replace(f'xmlns="{CT_NS}"', f'xmlns:ct="{CT_NS}"')
        .replace("<Default ", "<ct:Default ")
        .replace("<Override ", "<ct:Override ")
        .replace("</Types>", "</ct:Types>")
    )
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        f'<ct:Override PartName="/docProps/custom.xml" ContentType="{CUSTOM_TYPE}"/>', ""
    )
    label = make_label()
    out = write(zip_bytes(parts), label.to_json())
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        custom = archive.read("docProps/custom.xml").decode()
        types = archive.read("[Content_Types].xml").decode()
    assert "<op:property " in custom and "</op:Properties>" in custom
    assert '<ct:Override PartName="/docProps/custom.xml"' in types
    assert OoxmlLabeler().read(io.BytesIO(out)) == label.to_json()


def test_zip_bomb_is_capped() -> None:
    bomb = f'<Properties xmlns="{CUSTOM_NS}">' + " " * (17 * 1024 * 1024) + "</Properties>"
    data = zip_bytes(package("docx", custom=bomb))
    with pytest.raises(MediaLimitError):
        OoxmlLabeler().read(io.BytesIO(data))


def test_entities_are_refused() -> None:
    evil = '<!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>' + CUSTOM.replace("42", "&b;")
    data = zip_bytes(package("docx", custom=evil))
    with pytest.raises(MediaError):
        OoxmlLabeler().read(io.BytesIO(data))
    with pytest.raises(MediaError):
        write(data, make_label().to_json())


def eocd(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def central_record(data: bytes, name: bytes) -> int:
    """The offset of ``name``'s central directory record."""
    pos = data.index(b"PK\x01\x02")
    while data[pos + 46 : pos + 46 + len(name)] != name:
        pos = data.index(b"PK\x01\x02", pos + 4)
    return pos


def test_broken_and_unsupported_archives() -> None:
    data = zip_bytes(package("docx", custom=CUSTOM))
    end = eocd(data)
    types = central_record(data, b"[Content_Types].xml")
    custom = central_record(data, b"docProps/custom.xml")
    cases: list[tuple[bytes, type[MediaError]]] = [
        (patched(data, end + 10, "<H", 0xFFFF), UnsupportedFormatError),  # ZIP64 marker
        (patched(data, end + 16, "<I", 5), CorruptMediaError),  # directory not where it says
        (patched(data, types + 16, "<I", 0x12345678), CorruptMediaError),  # CRC mismatch
        (patched(data, custom + 8, "<H", 1), UnsupportedFormatError),  # encrypted part
        (patched(data, custom + 42, "<I", 3), CorruptMediaError),  # local header missing
        (data[: len(data) // 2], CorruptMediaError),  # truncated
        (zip_bytes({"[Content_Types].xml": "<Types/>", "word/document.xml": "<x/>"}), CorruptMediaError),
    ]
    for blob, error in cases:
        with pytest.raises(error):
            write(blob, make_label().to_json())


def test_duplicate_names_are_refused() -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in package("docx").items():
                archive.writestr(name, text)
            archive.writestr("word/document.xml", "<again/>")
    with pytest.raises(CorruptMediaError):
        OoxmlLabeler().read(io.BytesIO(buffer.getvalue()))


def test_read_touches_only_the_directory_and_three_parts() -> None:
    parts = package("docx")
    parts["word/media/image1.bin"] = "x" * 3_000_000
    out = write(zip_bytes(parts, zipfile.ZIP_STORED), make_label().to_json())
    stream = CountingReader(out)
    assert OoxmlLabeler().read(stream) is not None
    assert stream.count < 64 * 1024
