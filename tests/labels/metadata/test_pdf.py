"""PDF (/AIGC in the information dictionary, as an incremental update): the contract, pikepdf, pypdf and
exiftool reading the output, both cross-reference forms, relabeling after someone else's update,
encrypted and damaged files."""

from __future__ import annotations

import functools
import hashlib
import io
import re
import zlib
from pathlib import Path
from typing import Any

import pikepdf
import pypdf
import pytest

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, UnsupportedFormatError
from synthguard.labels.metadata.pdf import PdfLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import CountingReader, exiftool_record, label_copy


def new_pdf(pages: int = 1, info: dict[str, str] | None = None) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for number in range(pages):
        pdf.add_blank_page(page_size=(200, 200))
        page = pdf.pages[number]
        drawing = (
            f"0 0 1 rg 10 10 {50 + number} 50 re f BT /F1 12 Tf 20 150 Td (Page {number}) Tj ET".encode()
        )
        if number == 1:  # a page whose content is an array of streams, one compressed
            page.Contents = pikepdf.Array(
                [pdf.make_stream(b"q 1 0 0 rg"), pdf.make_stream(zlib.compress(drawing + b" Q"))]
            )
            page.Contents[1].Filter = pikepdf.Name.FlateDecode
        else:
            page.Contents = pdf.make_stream(drawing)
    for key, value in (info or {}).items():
        pdf.docinfo[pikepdf.Name("/" + key)] = value
    return pdf


def make_pdfs(folder: Path) -> list[Path]:
    classic = folder / "classic.pdf"
    with new_pdf(1, {"Title": "Classic", "Author": "Unit 测试"}) as pdf:
        pdf.save(classic)
    streams = folder / "xref-stream.pdf"
    with new_pdf(2, {"Title": "Object streams", "Author": "Unit"}) as pdf:
        pdf.save(streams, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    bare = folder / "no-info.pdf"
    with new_pdf(1) as pdf:
        pdf.save(bare)
    return [classic, streams, bare]


def pdf_metadata(path: Path) -> dict[str, Any]:
    with pikepdf.open(path) as pdf:
        info = {str(k): str(v) for k, v in pdf.docinfo.items() if k != "/AIGC"}
        contents = []
        for page in pdf.pages:
            value = page.obj.Contents
            streams = list(value) if isinstance(value, pikepdf.Array) else [value]
            contents.append([hashlib.sha256(s.read_raw_bytes()).hexdigest() for s in streams])
        problems = pdf.check_pdf_syntax()
    reader = pypdf.PdfReader(path)
    other = {k: str(v) for k, v in (reader.metadata or {}).items() if k != "/AIGC"}
    return {"info": info, "pypdf": other, "contents": contents, "problems": problems}


class TestPdfContract(MetadataLabelerContract):
    labeler = PdfLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_pdfs(folder)

    def other_metadata(self, path: Path) -> Any:
        return pdf_metadata(path)


write = functools.partial(label_copy, PdfLabeler())


@pytest.mark.tools
def test_pikepdf_pypdf_and_exiftool_read_the_label(tmp_path: Path) -> None:
    label = make_label()
    for src in make_pdfs(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label.to_json())
        assert dst.read_bytes().startswith(src.read_bytes())  # an update: nothing before it changes
        with pikepdf.open(dst) as pdf:
            assert AigcLabel.parse(str(pdf.docinfo["/AIGC"])) == label
            assert pdf.check_pdf_syntax() == []
        assert AigcLabel.parse(pypdf.PdfReader(dst).metadata["/AIGC"]) == label
        record = exiftool_record(dst, "-PDF:AIGC", "-PDF:Title")
        assert AigcLabel.parse(record["AIGC"]) == label


def test_update_uses_the_files_cross_reference_form(tmp_path: Path) -> None:
    classic, streams, _ = make_pdfs(tmp_path)
    for src, xref_stream in ((classic, False), (streams, True)):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, make_label().to_json())
        update = dst.read_bytes()[src.stat().st_size :]
        assert (b"/Type /XRef" in update) is xref_stream
        assert (b"\nxref\n" in update) is not xref_stream
        prev = int(re.search(rb"/Prev (\d+)", update).group(1))  # type: ignore[union-attr]
        assert prev == int(re.findall(rb"startxref\s+(\d+)", src.read_bytes())[-1])


def test_relabel_after_another_update_appends(tmp_path: Path) -> None:
    src = make_pdfs(tmp_path)[0]
    first, second = make_label(), make_label(ProduceID="00000000000000AB")
    labeled = tmp_path / "labeled.pdf"
    write(src, labeled, first.to_json())
    edited = tmp_path / "edited.pdf"
    writer = pypdf.PdfWriter(labeled, incremental=True)
    writer.add_metadata({"/Title": "Edited later"})
    writer.write(edited)
    assert edited.read_bytes().startswith(labeled.read_bytes())
    relabeled = tmp_path / "relabeled.pdf"
    write(edited, relabeled, second.to_json())
    assert relabeled.read_bytes().startswith(edited.read_bytes())  # the other update is kept
    with pikepdf.open(relabeled) as pdf:
        assert str(pdf.docinfo["/Title"]) == "Edited later"
        assert AigcLabel.parse(str(pdf.docinfo["/AIGC"])) == second
        assert pdf.check_pdf_syntax() == []
    # and relabeling that again replaces only the newest update
    again = tmp_path / "again.pdf"
    write(relabeled, again, first.to_json())
    assert again.stat().st_size == relabeled.stat().st_size
    assert again.read_bytes().startswith(edited.read_bytes())


def test_encrypted_pdfs_are_refused(tmp_path: Path) -> None:
    owner_only, with_user = tmp_path / "owner.pdf", tmp_path / "user.pdf"
    with new_pdf(1, {"Title": "Secret"}) as pdf:
        pdf.save(owner_only, encryption=pikepdf.Encryption(owner="o", user=""))
        pdf.save(with_user, encryption=pikepdf.Encryption(owner="o", user="u"))
    with owner_only.open("rb") as fh:
        assert PdfLabeler().read(fh) is None
        with pytest.raises(UnsupportedFormatError):
            PdfLabeler().write(fh, io.BytesIO(), make_label().to_json())
    with with_user.open("rb") as fh, pytest.raises(UnsupportedFormatError):
        PdfLabeler().read(fh)


def test_damaged_files_are_typed_errors(tmp_path: Path) -> None:
    data = make_pdfs(tmp_path)[0].read_bytes()
    start = data.rindex(b"startxref")
    cases = [
        data[:start],  # no startxref
        data[:start] + b"startxref\n999999\n%%EOF\n",  # past the end
        data[:start] + b"startxref\n3\n%%EOF\n",  # not a cross-reference section
        b"%PDF-1.7\n" + b"garbage " * 100,
    ]
    for blob in cases:
        with pytest.raises(MediaError):
            PdfLabeler().write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())


def test_info_that_is_not_a_dictionary(tmp_path: Path) -> None:
    path = tmp_path / "odd.pdf"
    with new_pdf(1) as pdf:
        pdf.trailer.Info = pdf.make_indirect(pikepdf.Array([1, 2]))
        pdf.save(path)
    with path.open("rb") as fh:
        assert PdfLabeler().read(fh) is None
        with pytest.raises(CorruptMediaError):
            PdfLabeler().write(fh, io.BytesIO(), make_label().to_json())


def test_reading_does_not_touch_page_content(tmp_path: Path) -> None:
    src = make_pdfs(tmp_path)[0]  # classic: its only streams are page content
    dst = tmp_path / "out.pdf"
    label = make_label()
    write(src, dst, label.to_json())
    data = bytearray(dst.read_bytes())
    # destroy every content stream's data: reading the label must not notice
    for match in re.finditer(rb"\nstream\r?\n", bytes(data)):
        data[match.end() : match.end() + 4] = b"\x00\x00\x00\x00"
    assert data != dst.read_bytes()
    assert PdfLabeler().read(io.BytesIO(bytes(data))) == label.to_json()


def test_read_does_not_read_a_large_content_stream(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    with new_pdf(1, {"Title": "Big"}) as pdf:
        pdf.pages[0].Contents = pdf.make_stream(bytes(range(256)) * 16_000)
        pdf.save(path)
    out = io.BytesIO()
    PdfLabeler().write(io.BytesIO(path.read_bytes()), out, make_label().to_json())
    stream = CountingReader(out.getvalue())
    assert PdfLabeler().read(stream) is not None
    assert stream.count < 64 * 1024
