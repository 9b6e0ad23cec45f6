"""label_file / relabel_file / detect_file: the rules around the container modules."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from synthguard.config import Settings
from synthguard.errors import LabelError, MediaError, UnsupportedFormatError, UsageError
from synthguard.labels.base import LabelKind
from synthguard.labels.detect import detect_file
from synthguard.labels.pipeline import label_file, parse_kinds, relabel_file
from tests.conftest import PRODUCER, PROPAGATOR

CFG = Settings(provider_code=PRODUCER, propagator_code=PROPAGATOR)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(path, "JPEG")
    return path


def test_label_then_detect(photo: Path, tmp_path: Path) -> None:
    result = label_file(photo, tmp_path / "out.jpg", settings=CFG, produce_id="00000000000000AB")
    assert result.label is not None and result.label.ProduceID == "00000000000000AB"
    detection = detect_file(tmp_path / "out.jpg")
    assert detection.verdict == "1"
    assert detection.to_dict()["metadata"]["label"]["ContentProducer"] == PRODUCER
    assert detect_file(photo).verdict == "none"


def test_another_producers_label_is_not_overwritten(photo: Path, tmp_path: Path) -> None:
    label_file(photo, tmp_path / "a.jpg", settings=CFG)
    other = Settings(provider_code="001191110108DEMQ00018H10001")
    with pytest.raises(LabelError, match="already labeled"):
        label_file(tmp_path / "a.jpg", tmp_path / "b.jpg", settings=other)
    assert not (tmp_path / "b.jpg").exists()
    # the same producer labeling again updates the label
    again = label_file(tmp_path / "a.jpg", tmp_path / "c.jpg", settings=CFG)
    assert detect_file(tmp_path / "c.jpg").metadata.label == again.label


def test_relabel_without_label(photo: Path, tmp_path: Path) -> None:
    nothing = relabel_file(photo, tmp_path / "n.jpg", settings=CFG)
    assert nothing.output is None and "nothing to write" in nothing.note
    assert not (tmp_path / "n.jpg").exists()
    declared = relabel_file(photo, tmp_path / "d.jpg", settings=CFG, declared_ai=True)
    assert declared.label is not None and declared.label.Label == "2"
    traces = relabel_file(photo, tmp_path / "t.jpg", settings=CFG, traces_found=True)
    assert traces.label is not None and traces.label.Label == "3"
    assert detect_file(tmp_path / "t.jpg").verdict == "3"


def test_in_place_and_usage_errors(photo: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        label_file(photo, settings=CFG)
    result = label_file(photo, in_place=True, settings=CFG)
    assert result.output == str(photo)
    assert detect_file(photo).metadata.label == result.label
    with pytest.raises(UsageError, match="producer"):
        label_file(photo, tmp_path / "x.jpg", settings=Settings())
    with pytest.raises(UsageError, match="unknown label kind"):
        parse_kinds("metadata,sparkles", CFG)
    assert parse_kinds("metadata, visible", CFG) == (LabelKind.VISIBLE, LabelKind.METADATA)
    with pytest.raises(UsageError, match="no watermark_key"):
        label_file(photo, tmp_path / "w.jpg", kinds="watermark,metadata", settings=CFG)
    with pytest.raises(UsageError, match="metadata label is always written"):
        label_file(photo, tmp_path / "v.jpg", kinds="visible", settings=CFG)
    assert not (tmp_path / "w.jpg").exists() and not (tmp_path / "v.jpg").exists()


def test_invalid_provider_code_is_refused(photo: Path, tmp_path: Path) -> None:
    from synthguard.errors import InvalidProviderCodeError

    with pytest.raises(InvalidProviderCodeError):
        label_file(
            photo, tmp_path / "x.jpg", settings=Settings(provider_code=PRODUCER[:21] + "1" + PRODUCER[22:])
        )


def test_bad_inputs_are_typed_errors_and_leave_nothing(tmp_path: Path) -> None:
    cases = {
        "empty.jpg": b"",
        "text-named.jpg": b"hello \x00 binary",
        "truncated.jpg": b"\xff\xd8\xff\xe1\x10\x00Exif",
    }
    for name, data in cases.items():
        src = tmp_path / name
        src.write_bytes(data)
        with pytest.raises(MediaError) as info:
            label_file(src, tmp_path / f"out-{name}", settings=CFG)
        assert str(src) in str(info.value)
        assert not (tmp_path / f"out-{name}").exists()
        assert src.read_bytes() == data
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(MediaError, match="no such file"):
        label_file(tmp_path / "missing.jpg", tmp_path / "o.jpg", settings=CFG)


def test_format_comes_from_bytes_not_name(photo: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "photo.mp3"
    shutil.copy(photo, disguised)
    result = label_file(disguised, tmp_path / "out.wav", settings=CFG)
    assert result.container.value == "jpeg"
    with pytest.raises(UnsupportedFormatError, match="BigTIFF"):
        bigtiff = tmp_path / "x.jpg"
        bigtiff.write_bytes(b"II+\x00" + bytes(100))
        label_file(bigtiff, tmp_path / "y.jpg", settings=CFG)


def test_existing_output_is_replaced_only_on_success(photo: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"previous content")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe1\xff\xff" + bytes(10))
    with pytest.raises(MediaError):
        label_file(broken, target, settings=CFG)
    assert target.read_bytes() == b"previous content"
    label_file(photo, target, settings=CFG)
    assert detect_file(target).verdict == "1"


def test_unparseable_label_is_a_trace(tmp_path: Path) -> None:
    from synthguard.labels.metadata import xmp
    from synthguard.labels.metadata.jpeg import XMP_ID
    from tests.labels.metadata.test_jpeg import insert_app1

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    packet = xmp.new_packet('{"Label":"9"}')
    path = tmp_path / "odd.jpg"
    path.write_bytes(insert_app1(buffer.getvalue(), XMP_ID + packet))
    detection = detect_file(path)
    assert detection.metadata.found and detection.metadata.label is None
    assert detection.verdict == "3"
    with pytest.raises(LabelError, match="cannot be parsed"):
        relabel_file(path, tmp_path / "r.jpg", settings=CFG)
