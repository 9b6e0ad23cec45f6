"""Labels written by other tools read back: exiftool (XMP-TC260 in images, and XMP in MP4), ffmpeg
(``-metadata AIGC=...`` in MP4/M4A with use_metadata_tags, MKV, FLV, MP3, FLAC, Ogg, Opus) and
mutagen (ID3 TXXX, Vorbis comments)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from synthguard.aigc import AigcLabel
from synthguard.labels.detect import detect_file
from tests.conftest import require_tool
from tests.contracts.metadata_contract import make_label

CONFIG = Path(__file__).resolve().parents[2] / "bench" / "exiftool-tc260.config"
VIDEO = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "0.5"]
AUDIO = ["-f", "lavfi", "-i", "sine=f=440", "-t", "0.5"]

FFMPEG_CASES = {
    "v.mp4": [*VIDEO, "-c:v", "libx264", "-movflags", "use_metadata_tags"],
    "a.m4a": [*AUDIO, "-c:a", "aac", "-movflags", "use_metadata_tags"],
    "v.mkv": [*VIDEO, "-c:v", "libx264"],
    "v.webm": [*VIDEO, "-c:v", "libvpx-vp9", "-deadline", "realtime"],
    "v.flv": [*VIDEO, "-c:v", "flv1"],
    "a.mp3": [*AUDIO, "-c:a", "libmp3lame"],
    "a.flac": [*AUDIO, "-c:a", "flac"],
    "a.ogg": [*AUDIO, "-c:a", "libvorbis"],
    "a.opus": [*AUDIO, "-c:a", "libopus"],
}


@pytest.mark.tools
@pytest.mark.parametrize("name", sorted(FFMPEG_CASES))
def test_ffmpeg_metadata_is_read(name: str, tmp_path: Path) -> None:
    label = make_label()
    path = tmp_path / name
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-v",
            "error",
            *FFMPEG_CASES[name],
            "-metadata",
            f"AIGC={label.to_json()}",
            str(path),
        ],
        check=True,
    )
    assert detect_file(path).metadata.label == label


def _exiftool_label(path: Path, label: AigcLabel) -> None:
    subprocess.run(
        [
            require_tool("exiftool"),
            "-config",
            str(CONFIG),
            "-q",
            "-overwrite_original",
            f"-XMP-TC260:AIGC={label.to_json()}",
            str(path),
        ],
        check=True,
    )


@pytest.mark.tools
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "GIF", "AVIF"])
def test_exiftool_xmp_is_read(fmt: str, tmp_path: Path) -> None:
    label = make_label()
    path = tmp_path / f"image.{fmt.lower()}"
    Image.new("RGB", (40, 30), (30, 90, 160)).save(path, fmt)
    _exiftool_label(path, label)
    assert detect_file(path).metadata.label == label


@pytest.mark.tools
def test_exiftool_xmp_in_mp4_is_read(tmp_path: Path) -> None:
    label = make_label()
    path = tmp_path / "x.mp4"
    subprocess.run([require_tool("ffmpeg"), "-v", "error", *VIDEO, "-c:v", "libx264", str(path)], check=True)
    _exiftool_label(path, label)
    assert detect_file(path).metadata.label == label


def test_mutagen_tags_are_read(tmp_path: Path) -> None:
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TXXX

    label = make_label()
    mp3 = tmp_path / "a.mp3"
    subprocess.run([require_tool("ffmpeg"), "-v", "error", *AUDIO, str(mp3)], check=True)
    tags = ID3()
    tags.add(TXXX(encoding=3, desc="AIGC", text=[label.to_json()]))
    tags.save(str(mp3))
    assert detect_file(mp3).metadata.label == label
    flac = tmp_path / "a.flac"
    subprocess.run([require_tool("ffmpeg"), "-v", "error", *AUDIO, str(flac)], check=True)
    audio = FLAC(str(flac))
    audio["AIGC"] = label.to_json()
    audio.save()
    assert detect_file(flac).metadata.label == label
