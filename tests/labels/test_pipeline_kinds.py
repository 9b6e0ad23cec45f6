"""The whole pipeline on each modality: explicit label, then watermark, then metadata label, each
found again by ``detect`` (the metadata label signed over the content as the earlier steps left it)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthguard.config import Settings
from synthguard.labels.base import LabelKind
from synthguard.labels.detect import Check, detect_file
from synthguard.labels.pipeline import label_file
from tests.media_tools import run_ffmpeg

WATERMARK_KEY = "pipeline-test-watermark-key-0001"


@pytest.fixture
def settings(ed25519_settings: Settings) -> Settings:
    return dataclasses.replace(ed25519_settings, watermark_key=WATERMARK_KEY)


def _photo(path: Path) -> Path:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:360, 0:480]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.float64) + rng.normal(0, 8, (360, 480, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def test_an_image_gets_all_three_in_order_and_detect_finds_them(settings: Settings, tmp_path: Path) -> None:
    src = _photo(tmp_path / "photo.jpg")
    before = src.read_bytes()
    result = label_file(src, tmp_path / "out.jpg", settings=settings)
    assert result.kinds == (LabelKind.VISIBLE, LabelKind.WATERMARK, LabelKind.METADATA)
    assert src.read_bytes() == before
    assert result.visible is not None and result.visible["glyph_height_fraction"] >= 0.05
    found = detect_file(tmp_path / "out.jpg", settings=settings, checks=set(Check))
    assert result.label is not None and found.metadata.label == result.label
    assert found.metadata.signature.value == "valid"  # signed after the visible label and watermark
    assert found.watermark is not None and found.watermark.found
    assert found.watermark.produce_id == result.label.ProduceID
    assert found.visible is not None and found.visible["found"] and found.visible["conforms"]
    assert found.verdict == "1"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work files left


def test_without_a_metadata_label_the_traces_make_the_verdict_suspected(
    settings: Settings, tmp_path: Path
) -> None:
    src = _photo(tmp_path / "photo.jpg")
    labeled = tmp_path / "out.jpg"
    label_file(src, labeled, settings=settings)
    # a screenshot: the pixels only, re-encoded; the metadata label is gone
    Image.open(labeled).convert("RGB").save(tmp_path / "shot.png")
    found = detect_file(tmp_path / "shot.png", settings=settings, checks=set(Check))
    assert found.metadata.label is None
    assert found.watermark is not None and found.watermark.found
    assert found.verdict == "3"


def test_default_kinds_skip_what_the_file_cannot_take(ed25519_settings: Settings, tmp_path: Path) -> None:
    src = _photo(tmp_path / "photo.jpg")
    result = label_file(src, tmp_path / "out.jpg", settings=ed25519_settings)  # no watermark key
    assert result.kinds == (LabelKind.VISIBLE, LabelKind.METADATA)
    assert "watermark skipped: no watermark_key" in result.note
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(tiny)
    keyed = dataclasses.replace(ed25519_settings, watermark_key=WATERMARK_KEY)
    small = label_file(tiny, tmp_path / "tiny-out.png", settings=keyed)
    assert small.kinds == (LabelKind.VISIBLE, LabelKind.METADATA) and "watermark skipped" in small.note


def test_audio_gets_the_rhythm_prompt_then_the_metadata_label(
    ed25519_settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "tone.wav"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-ar", "44100", str(src))
    result = label_file(src, tmp_path / "out.wav", kinds="visible,metadata", settings=ed25519_settings)
    assert result.visible is not None and result.visible["modality"] == "audio"
    found = detect_file(tmp_path / "out.wav", settings=ed25519_settings, checks={Check.VISIBLE})
    assert found.metadata.signature.value == "valid"
    assert found.visible is not None and found.visible["found"]


def test_markdown_gets_the_text_label_then_front_matter(ed25519_settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "answer.md"
    src.write_text("# 回答\n\n```python\nprint('hi')\n```\n\n这是模型生成的回答。\n", encoding="utf-8")
    label_file(src, tmp_path / "out.md", kinds="visible,metadata", settings=ed25519_settings)
    text = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert text.startswith("---\n") and "AIGC:" in text
    body = text.split("\n---\n", 1)[1]
    assert body.startswith("【人工智能生成】") and "```python\nprint('hi')\n```" in body
    found = detect_file(tmp_path / "out.md", settings=ed25519_settings, checks={Check.VISIBLE})
    assert found.metadata.signature.value == "valid"
    assert found.visible is not None and found.visible["found"]


def test_an_explicit_kind_that_cannot_be_applied_is_an_error(
    ed25519_settings: Settings, tmp_path: Path
) -> None:
    from synthguard.errors import UsageError

    pdf = tmp_path / "doc.pdf"
    Image.new("RGB", (50, 50)).save(pdf)
    with pytest.raises(UsageError, match="cannot apply the visible label"):
        label_file(pdf, tmp_path / "out.pdf", kinds="visible,metadata", settings=ed25519_settings)
    result = label_file(pdf, tmp_path / "out.pdf", settings=ed25519_settings)
    assert result.kinds == (LabelKind.METADATA,) and "visible skipped" in result.note
    assert json.loads(json.dumps(result.to_dict()))["kinds"] == ["metadata"]
