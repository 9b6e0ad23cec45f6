"""The checker finds explicit labels made by other tools (Pillow in another font, ffmpeg drawtext, sox),
measures them, and claims none on unlabeled photos, speech or plain text."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from synthguard.cli.main import app
from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, MediaError, UnsupportedFormatError
from synthguard.visible.audio import label_audio_file
from synthguard.visible.checker import check_file, check_text
from synthguard.visible.speech import spoken_prompt
from tests.conftest import PDQ, require_tool
from tests.visible.test_rhythm import _sox_rhythm, _write_wav

BRIDGE = PDQ / "bridge-mods" / "aaa-orig.jpg"


def _draw(
    path: Path, font_path: str, text: str, height_fraction: float, corner: str = "bottom-right"
) -> tuple[Path, float]:
    """The bridge photo at 1280x720 with ``text`` drawn in white with a dark outline; the drawn ink
    height as a fraction of the shortest side."""
    image = Image.open(BRIDGE).convert("RGB").resize((1280, 720))
    draw = ImageDraw.Draw(image)
    size = round(720 * height_fraction / 0.8)
    font = ImageFont.truetype(font_path, size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, stroke_width=2)
    margin = 20
    x = 1280 - (x1 - x0) - margin if corner.endswith("right") else margin
    y = 720 - (y1 - y0) - margin if corner.startswith("bottom") else margin
    draw.text((x - x0, y - y0), text, font=font, fill="white", stroke_width=2, stroke_fill="black")
    ink = draw.textbbox((x - x0, y - y0), text, font=font, stroke_width=2)  # the outline is ink too
    image.save(path, quality=92)
    return path, (ink[3] - ink[1]) / 720


# -- text ----------------------------------------------------------------------------------------


def test_text_phrases_where_and_conformance() -> None:
    body = "这是一段普通的文字。" * 40
    text = f"【AI生成】{body}中间由人工智能生成合成的段落{body}AI-generated content"
    found = check_text(text)
    assert [(f.text, f.where, f.conforms) for f in found] == [
        ("AI生成", "start", True),
        ("由人工智能生成合成", "middle", True),
        ("AI-generated content", "end", False),
    ]
    start, end = found[1].details["start"], found[1].details["end"]
    assert text[start:end] == "由人工智能生成合成"
    assert check_text("MAIN 生成 了一份报告, created by a person") == []


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("AIai人工智能生成合成由 -\n.【】x")), max_size=200))
def test_text_check_never_fails_and_spans_hold_the_phrase(text: str) -> None:
    for finding in check_text(text):
        assert text[finding.details["start"] : finding.details["end"]] == finding.text
        assert finding.where in ("start", "middle", "end")


def test_transparent_image_is_read_over_white(tmp_path: Path, other_font: str) -> None:
    image = Image.new("RGBA", (800, 450), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text((560, 380), "AI生成", font=ImageFont.truetype(other_font, 48), fill=(0, 0, 0, 255))
    image.save(tmp_path / "t.png")
    report = check_file(tmp_path / "t.png")
    assert report.found and report.conforms


def test_text_file_and_docx(tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("今天天气很好。\n\n本文由AI生成", encoding="utf-8")
    report = check_file(plain)
    assert report.found and report.conforms and report.modality == "text"
    assert report.findings[0].where == "end"

    docx = tmp_path / "a.docx"
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>AI</w:t></w:r><w:r>'
            '<w:t xml:space="preserve">生成</w:t></w:r></w:p></w:body></w:document>',
        )
    report = check_file(docx)
    assert report.container == "docx" and report.found and report.conforms

    clean = tmp_path / "b.md"
    clean.write_text("# Notes\n\nNothing generated here, said the AI researcher.\n", encoding="utf-8")
    assert not check_file(clean).found


def test_text_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes("AI生成".encode("gb18030") + b"\xff\xfe" * 10)
    with pytest.raises((CorruptMediaError, UnsupportedFormatError)):
        check_file(path)


# -- images --------------------------------------------------------------------------------------


def test_finds_pillow_text_in_another_font_and_measures_it(tmp_path: Path, other_font: str) -> None:
    path, drawn = _draw(tmp_path / "labeled.jpg", other_font, "AI生成", 0.07)
    report = check_file(path)
    assert report.found and report.conforms
    [finding] = report.findings
    assert finding.text == "AI生成"
    assert finding.where == "bottom-right"
    assert finding.details["on_edge"] is True
    assert finding.details["height_fraction"] == pytest.approx(drawn, rel=0.15)
    assert 'Label "3"' in report.to_dict()["suggestion"]


def test_a_small_label_is_found_but_does_not_conform(tmp_path: Path, other_font: str) -> None:
    path, drawn = _draw(tmp_path / "small.png", other_font, "人工智能生成", 0.03, corner="top-left")
    report = check_file(path)
    [finding] = report.findings
    assert report.found and not report.conforms
    assert finding.where == "top-left"
    assert finding.details["has_both_elements"] is True
    assert finding.details["height_fraction"] == pytest.approx(drawn, rel=0.2)
    assert finding.details["height_fraction"] < 0.05


def test_wording_without_generation_element_does_not_count(tmp_path: Path, other_font: str) -> None:
    path, _ = _draw(tmp_path / "x.png", other_font, "人工智能", 0.08)
    assert not check_file(path).found


@pytest.mark.parametrize("name", ["aaa-orig.jpg", "high-contrast.jpg"])
def test_no_label_claimed_on_unlabeled_photos(name: str) -> None:
    report = check_file(PDQ / "bridge-mods" / name)
    assert not report.found and report.findings == []


@pytest.mark.slow
def test_no_label_claimed_on_any_shared_photo() -> None:
    photos = sorted(
        p
        for folder in ("bridge-mods", "dih", "misc-images")
        for p in (PDQ / folder).iterdir()
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    assert len(photos) >= 20
    claimed = [p.name for p in photos if check_file(p).found]
    assert claimed == []


def test_unreadable_image_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    with pytest.raises(CorruptMediaError) as caught:
        check_file(path)
    assert caught.value.path == str(path)


# -- video ---------------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run([require_tool("ffmpeg"), "-loglevel", "error", "-y", *args], check=True)


@pytest.mark.tools
def test_finds_ffmpeg_drawtext_on_a_video(tmp_path: Path, other_font: str) -> None:
    path = tmp_path / "drawtext.mp4"
    text = "fontfile=" + other_font + ":text='AI生成':fontsize=36:fontcolor=white:borderw=2"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=10:duration=3",
        "-vf", f"drawtext={text}:x=w-tw-16:y=h-th-16:enable='lt(t,2.5)'",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    report = check_file(path)
    assert report.found and report.conforms and report.modality == "video"
    assert {f.details["time_s"] for f in report.findings} == {0.0, 1.0, 1.9}
    assert all(
        f.where == "start" and f.details["where_in_picture"] == "bottom-right" for f in report.findings
    )


@pytest.mark.tools
@pytest.mark.slow
def test_a_label_shown_too_briefly_does_not_conform(tmp_path: Path, other_font: str) -> None:
    path = tmp_path / "brief.mp4"
    text = "fontfile=" + other_font + ":text='AI生成':fontsize=36:fontcolor=white:borderw=2"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=10:duration=3",
        "-vf", f"drawtext={text}:x=16:y=16:enable='lt(t,0.5)'",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    report = check_file(path)
    assert report.found and not report.conforms
    assert [f.details["time_s"] for f in report.findings] == [0.0]


@pytest.mark.tools
def test_video_without_label_and_without_video_stream(tmp_path: Path) -> None:
    plain = tmp_path / "plain.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=0.8",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(plain),
    )  # fmt: skip
    assert not check_file(plain).found
    audio_only = tmp_path / "audio.mkv"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(audio_only))
    with pytest.raises(UnsupportedFormatError, match="without a video stream"):
        check_file(audio_only)


# -- audio ---------------------------------------------------------------------------------------


def test_finds_a_sox_rhythm(tmp_path: Path) -> None:
    report = check_file(_sox_rhythm(tmp_path))
    [finding] = report.findings
    assert report.found and report.conforms and finding.method == "rhythm" and finding.where == "start"
    assert finding.details["frequency_hz"] == pytest.approx(1000, abs=30)


def test_finds_our_own_prompts_where_they_were_put(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    source = _write_wav(tmp_path / "in.wav", rng.normal(0, 0.05, 16000 * 30))
    label_audio_file(source, tmp_path / "out.wav", Settings(visible_audio_where=("start", "middle", "end")))
    report = check_file(tmp_path / "out.wav")
    assert [f.where for f in report.findings] == ["start", "middle", "end"]


def test_no_label_claimed_in_other_speech_or_noise(tmp_path: Path) -> None:
    clip = spoken_prompt(16000)
    syllables = np.array_split(clip, 6)
    # speech that is not the prompt: the same voice, syllables reordered, and the clip reversed
    other = np.concatenate([syllables[i] for i in (3, 1, 5, 0, 2, 4)] + [clip[::-1]])
    speech = _write_wav(tmp_path / "speech.wav", np.tile(other, 2))
    noise = _write_wav(tmp_path / "noise.wav", np.random.default_rng(4).normal(0, 0.1, 16000 * 5))
    for path in (speech, noise):
        report = check_file(path)
        assert not report.found
        assert any("spoken" in note for note in report.notes)


@pytest.mark.tools
def test_finds_our_spoken_prompt_after_mp3_encoding(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    source = _write_wav(tmp_path / "in.wav", rng.normal(0, 0.02, 16000 * 20))
    settings = Settings(visible_audio_prompt="speech", visible_audio_where=("end",))
    result = label_audio_file(source, tmp_path / "out.wav", settings)
    mp3 = tmp_path / "out.mp3"
    _ffmpeg("-i", str(tmp_path / "out.wav"), "-ar", "44100", "-b:a", "96k", str(mp3))
    report = check_file(mp3)
    [finding] = report.findings
    assert finding.method == "speech" and finding.where == "end" and report.conforms
    expected = result.placements[0]["parts"][0]["start_s"]
    assert finding.details["start_s"] == pytest.approx(expected, abs=0.08)
    human = CliRunner().invoke(app, ["check", str(mp3)])
    assert human.exit_code == 0 and "人工智能生成" in human.stdout and "(end;" in human.stdout


def test_zero_length_audio_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorruptMediaError, match="zero length"):
        check_file(_write_wav(tmp_path / "empty.wav", np.zeros(0)))


# -- command line --------------------------------------------------------------------------------


def test_cli_json_and_exit_status(tmp_path: Path) -> None:
    labeled = tmp_path / "a.txt"
    labeled.write_text("AI生成：一首诗", encoding="utf-8")
    missing = tmp_path / "missing.wav"
    result = CliRunner().invoke(app, ["check", "--json", str(labeled), str(missing)])
    assert result.exit_code == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["found"] is True and first["findings"][0]["where"] == "start"
    assert second["path"] == str(missing) and "error" in second
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("plain", encoding="utf-8")
    folder = CliRunner().invoke(app, ["check", "--json", str(tmp_path)])
    assert folder.exit_code == 0
    assert [json.loads(line)["found"] for line in folder.stdout.splitlines()] == [True, False]
    human = CliRunner().invoke(app, ["check", str(labeled)])
    assert human.exit_code == 0
    assert "AI生成" in human.stdout and "conforms" in human.stdout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(
        [
            b"\xff\xd8\xff\xe0",
            b"\x89PNG\r\n\x1a\n",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",
            b"\x1aE\xdf\xa3",
            b"PK\x03\x04",
        ]
    ),
    st.binary(max_size=400),
)
def test_hostile_bytes_give_typed_errors(tmp_path: Path, magic: bytes, body: bytes) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(magic + body)
    try:
        report = check_file(path)
    except MediaError as exc:
        assert exc.path == str(path)
    else:
        assert isinstance(report.to_dict()["found"], bool)


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_video_is_read_as_displayed(tmp_path: Path, other_font: str, rotation: int) -> None:
    """A phone video: stored landscape, shown portrait by its display matrix, label upright as shown."""
    shown = Image.open(BRIDGE).convert("RGB").resize((270, 480))
    draw = ImageDraw.Draw(shown)
    draw.text(
        (150, 430),
        "AI生成",
        font=ImageFont.truetype(other_font, 30),
        fill="white",
        stroke_width=2,
        stroke_fill="black",
    )
    undo = {90: Image.Transpose.ROTATE_270, 270: Image.Transpose.ROTATE_90}[rotation]
    stored = shown.transpose(undo)
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = stored.width, stored.height, "yuv420p"
        stream.set_display_rotation(rotation)
        for i in range(8):
            frame = av.VideoFrame.from_image(stored)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    report = check_file(path)
    [finding] = report.findings
    assert finding.details["display_rotation"] == rotation
    assert finding.details["where_in_picture"] == "bottom-right"
    assert finding.details["frame_conforms"] and "sideways_when_displayed" not in finding.details
