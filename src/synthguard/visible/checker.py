"""The checker: finds explicit labels (GB 45438 Chapter 5) in content synthguard did not label itself.

A platform that receives a file without a metadata label but with a visible or audible label on it
sets Label "3" (suspected AI-generated; Labeling Measures Art. 6). :func:`check_file` looks:

- **text** (plain text, Markdown, and the text of docx, pptx and xlsx): label phrases by the wording
  rules (:func:`synthguard.visible.wording.find_label_phrases`), each with its span and whether it
  sits at the start, the end or in the middle;
- **images**: OCR (:mod:`synthguard.visible.ocr`), each line that holds a label phrase reported with
  its box, where it sits (``bottom-right``, ``top``, ...), whether that is on an edge or a corner, and
  its ink height as a fraction of the shortest side; it conforms when it has both elements and that
  height is at least 5%;
- **video**: the same on frames sampled at 0, 1 and 1.9 seconds (the opening 2 s), the middle and one
  second before the end; a label conforms when a conforming one is on every opening frame;
- **audio**: the rhythm prompt short-long-short-short (:mod:`synthguard.visible.rhythm`), and
  synthguard's own spoken prompt (the bundled clip, by template matching). Other spoken prompts are
  not recognised (that would need a speech recognition model).

Findings are values: a file without a label gives ``found=False``. Media that cannot be read raise
``MediaError`` subclasses (``CorruptMediaError``, ``UnsupportedFormatError``, ``MediaLimitError``).
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from synthguard.errors import (
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
)
from synthguard.media import Container, Modality, identify_path
from synthguard.visible import ocr
from synthguard.visible._audio_speech_match import SpokenMatch, find_spoken_prompt
from synthguard.visible.rhythm import FloatArray, RhythmMatch, find_rhythm, scan_audio_file
from synthguard.visible.speech import SPOKEN_TEXT
from synthguard.visible.wording import conforms as wording_conforms
from synthguard.visible.wording import find_label_phrases

__all__ = ["CheckReport", "Finding", "check_file", "check_image", "check_text"]

#: GB 45438: glyph height at least 5% of the shortest side (images and video frames).
MIN_HEIGHT_FRACTION: Final = 0.05
#: A label is "on an edge" when its box reaches into the outer fifth of the picture.
EDGE_BAND: Final = 0.2
#: Text files larger than this are refused (MediaLimitError).
MAX_TEXT_BYTES: Final = 64 << 20
#: Video sample times (seconds) that make up "the opening frames for at least 2 s".
OPENING_TIMES: Final = (0.0, 1.0, 1.9)
SUGGESTION: Final = (
    'explicit AI label found: where the file has no metadata label, a platform writes Label "3" '
    "(suspected AI-generated, Labeling Measures Art. 6) and shows that notice"
)
# OCR reads a sans-serif capital I as a small l, a one or a bar; before a generation element it is I
_OCR_AI: Final = re.compile(r"(?<![A-Za-z])A[l1|!ｌ](?=\s*[-\s]?(?:生成|合成|辅助|generated|Generated))")
Box = tuple[int, int, int, int]
#: Display rotation (degrees counter-clockwise) to the turn that shows a stored frame upright.
_TURN: Final = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}
_OOXML_TEXT: Final = re.compile(r"<(?:\w+:)?t(?:\s[^>]*)?>([^<]*)</(?:\w+:)?t>")


@dataclasses.dataclass
class Finding:
    """One explicit label found.

    ``method`` is ``"wording"`` (text), ``"ocr"`` (images, video frames) or ``"rhythm"`` (audio);
    ``text`` what it says (for rhythm, a description); ``where`` start/middle/end (text, audio,
    video) or the picture position (``bottom-right``, ``top``, ``center``, ...); ``conforms`` whether
    this one label meets GB 45438 Chapter 5 as measured; ``details`` holds the measurements.
    """

    method: str
    text: str
    where: str
    conforms: bool
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CheckReport:
    """What :func:`check_file` found in one file.

    ``found``: at least one explicit label (conforming or not); ``conforms``: at least one label
    meets GB 45438 Chapter 5 as measured; ``suggestion`` says what a platform does about it;
    ``notes`` say what was not or could not be checked.
    """

    path: str
    container: str
    modality: str
    found: bool = False
    conforms: bool = False
    findings: list[Finding] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def suggestion(self) -> str:
        return SUGGESTION if self.found else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``found`` first, as ``detect``'s ``visible`` field expects."""
        return {
            "found": self.found,
            "conforms": self.conforms,
            "path": self.path,
            "container": self.container,
            "modality": self.modality,
            "findings": [f.to_dict() for f in self.findings],
            "suggestion": self.suggestion,
            "notes": list(self.notes),
        }


def _report(path: Path, container: Container, findings: list[Finding], notes: list[str]) -> CheckReport:
    return CheckReport(
        path=os.fspath(path),
        container=container.value,
        modality=container.modality.value,
        found=bool(findings),
        conforms=any(f.conforms for f in findings),
        findings=findings,
        notes=notes,
    )


# -- text ----------------------------------------------------------------------------------------


def _text_where(text: str, start: int, end: int) -> str:
    body_start = len(text) - len(text.lstrip())
    body_end = len(text.rstrip())
    reach = max(100, (body_end - body_start) // 10)
    from_start, from_end = start - body_start, body_end - end
    if min(from_start, from_end) > reach:
        return "middle"
    return "start" if from_start <= from_end else "end"


def check_text(text: str) -> list[Finding]:
    """Label phrases in ``text``: span (code points), where, and whether each conforms."""
    findings = []
    for start, end, phrase in find_label_phrases(text):
        findings.append(
            Finding(
                method="wording",
                text=phrase,
                where=_text_where(text, start, end),
                conforms=wording_conforms(phrase),
                details={"start": start, "end": end},
            )
        )
    return findings


def _read_text(path: Path, container: Container) -> tuple[str, list[str]]:
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise MediaLimitError(f"text of {size} bytes is over the checker's limit of {MAX_TEXT_BYTES}")
    if container is Container.MARKDOWN:
        try:
            return path.read_text(encoding="utf-8-sig"), []
        except UnicodeDecodeError as exc:
            raise CorruptMediaError(f"text is not UTF-8: {exc.reason}", offset=exc.start) from None
    if container in (Container.DOCX, Container.PPTX, Container.XLSX):
        prefix = {Container.DOCX: "word/", Container.PPTX: "ppt/slides/", Container.XLSX: "xl/"}[container]
        parts: list[str] = []
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.filename.startswith(prefix) and info.filename.endswith(".xml"):
                        if info.file_size > MAX_TEXT_BYTES:
                            raise MediaLimitError(f"{info.filename} is over {MAX_TEXT_BYTES} bytes")
                        xml = archive.read(info).decode("utf-8", "replace")
                        parts.append(html.unescape("".join(_OOXML_TEXT.findall(xml))))
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptMediaError(f"Office document cannot be read: {exc}") from None
        return "\n".join(parts), ["Office text compared without its formatting"]
    return "", [f"text in {container.value} files is not checked (no text extraction)"]


# -- pictures ------------------------------------------------------------------------------------


def _position(box: tuple[int, int, int, int], width: int, height: int) -> tuple[str, bool]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    column = "left" if cx < width / 3 else "right" if cx > 2 * width / 3 else ""
    row = "top" if cy < height / 3 else "bottom" if cy > 2 * height / 3 else ""
    where = "-".join(p for p in (row, column) if p) or "center"
    on_edge = (
        box[1] <= height * EDGE_BAND
        or box[3] >= height * (1 - EDGE_BAND)
        or box[0] <= width * EDGE_BAND
        or box[2] >= width * (1 - EDGE_BAND)
    )
    return where, on_edge


def _flatten(image: Image.Image) -> Image.Image:
    """RGB as a viewer shows it: transparency over white (a label on a transparent area shows)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit and 32-bit grey: scale to 8 bits instead of clipping everything to white
        array = np.asarray(image, dtype=np.float64)
        top = float(array.max()) or 1.0
        return Image.fromarray(np.round(array / top * 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _read(rgb: Image.Image, thorough: bool, regions: Sequence[Box] | None) -> list[ocr.OcrLine]:
    if regions is None:
        return ocr.read_lines(rgb, thorough=thorough)
    lines = []
    for x0, y0, x1, y1 in regions:
        for line in ocr.read_lines(rgb.crop((x0, y0, x1, y1)), max_upscale=1.5):
            bx0, by0, bx1, by1 = line.box
            lines.append(dataclasses.replace(line, box=(bx0 + x0, by0 + y0, bx1 + x0, by1 + y0)))
    return lines


def check_image(
    image: Image.Image,
    *,
    thorough: bool = False,
    scale: float = 1.0,
    regions: Sequence[Box] | None = None,
) -> list[Finding]:
    """Label phrases OCR reads in ``image``, with box, position and ink height.

    ``scale`` is the factor ``image`` was reduced by from the original (boxes are reported in the
    original's pixels; height fractions do not depend on it). ``regions`` (boxes in ``image``'s
    pixels) limits the reading to those areas, e.g. where the previous video frame had its label.
    """
    rgb = _flatten(image)
    width, height = rgb.size
    shortest = min(width, height)
    gray = np.asarray(rgb.convert("L"))
    findings = []
    for line in _read(rgb, thorough, regions):
        text = _OCR_AI.sub("AI", line.text)
        phrases = find_label_phrases(text)
        if not phrases:
            continue
        ink = ocr.ink_height(gray, line.box)
        fraction = ink / shortest if shortest else 0.0
        where, on_edge = _position(line.box, width, height)
        elements = any(wording_conforms(p) for _, _, p in phrases)
        box = [round(v / scale) for v in line.box]
        findings.append(
            Finding(
                method="ocr",
                text=text,
                where=where,
                conforms=elements and fraction >= MIN_HEIGHT_FRACTION,
                details={
                    "box": box,
                    "height_fraction": round(fraction, 4),
                    "box_height_fraction": round((line.box[3] - line.box[1]) / shortest, 4),
                    "on_edge": on_edge,
                    "has_both_elements": elements,
                    "ocr_text": line.text,
                    "score": round(line.score, 3),
                },
            )
        )
    return findings


def _open_image(path: Path, thorough: bool) -> tuple[Image.Image, float]:
    try:
        image = Image.open(path)
        original = image.size
        if image.format == "JPEG" and not thorough:
            factor = 960 / max(original)
            if factor < 0.5:
                image.draft("RGB", (math.ceil(original[0] * factor), math.ceil(original[1] * factor)))
        image.load()
        scale = image.size[0] / original[0]
        transposed = ImageOps.exif_transpose(image)
        return (transposed if transposed is not None else image), scale
    except Image.DecompressionBombError as exc:
        raise MediaLimitError(f"image too large to check: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptMediaError(f"image cannot be decoded: {exc}") from None


# -- video ---------------------------------------------------------------------------------------


def _video_frames(path: Path) -> tuple[list[tuple[str, float, Image.Image, int]], float]:
    """Frames at the opening times, the middle and one second before the end, as RGB images as
    stored, each with its display rotation (degrees counter-clockwise, from the display matrix)."""
    try:
        container = av.open(os.fspath(path))
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"cannot be read as video: {exc}") from None
    with container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise UnsupportedFormatError(
                "video file without a video stream", hint="nothing to look at; check it as audio"
            )
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        wanted: list[tuple[str, float]] = [("start", t) for t in OPENING_TIMES if t < max(duration, 0.1)]
        if duration > 6.0:
            wanted += [("middle", duration / 2), ("end", duration - 1.0)]
        frames: list[tuple[str, float, Image.Image, int]] = []
        try:
            for where, at in wanted:
                if at > 2.5 and stream.time_base is not None:
                    container.seek(int(at / stream.time_base), stream=stream, backward=True)
                elif frames and frames[-1][1] > at:
                    container.seek(0, stream=stream, backward=True)
                for frame in container.decode(stream):
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    if frame.time is None or frame.time + 1e-3 >= at:
                        picture = Image.fromarray(frame.to_ndarray(format="rgb24"))
                        frames.append((where, frame.time or 0.0, picture, int(frame.rotation or 0) % 360))
                        break
        except av.FFmpegError as exc:
            raise CorruptMediaError(f"video cannot be decoded: {exc}") from None
        if not frames:
            raise CorruptMediaError("the video stream holds no frames")
        return frames, duration


def _around(box: list[int], size: tuple[int, int]) -> Box:
    """``box`` grown by its height on every side, inside a picture of ``size``."""
    grow = box[3] - box[1]
    return (
        max(0, box[0] - grow),
        max(0, box[1] - grow),
        min(size[0], box[2] + grow),
        min(size[1], box[3] + grow),
    )


def _check_video(path: Path, thorough: bool) -> tuple[list[Finding], list[str]]:
    frames, duration = _video_frames(path)
    findings: list[Finding] = []
    previous: list[Finding] = []
    for where, at, stored, rotation in frames:
        # people see the frame turned by the display matrix: read it that way first
        image = stored.transpose(_TURN[rotation]) if rotation in _TURN else stored
        found: list[Finding] = []
        if where == "start" and previous:
            # the opening label is usually where it was a second ago: read only there first
            found = check_image(image, regions=[_around(f.details["box"], image.size) for f in previous])
        if not found:
            found = check_image(image, thorough=thorough)
        if not found and image is not stored:
            # burnt in without regard to the rotation: people see it sideways, still a trace
            found = check_image(stored, thorough=thorough)
            for finding in found:
                finding.details["sideways_when_displayed"] = True
                finding.conforms = False
        previous = found if where == "start" else []
        for finding in found:
            finding.details["where_in_picture"] = finding.where
            finding.details["time_s"] = round(at, 3)
            finding.details["display_rotation"] = rotation
            finding.where = where
            findings.append(finding)
    opening = {round(at, 3) for where, at, _, _ in frames if where == "start"}
    shown = {f.details["time_s"] for f in findings if f.where == "start" and f.conforms}
    long_enough = duration >= 2.0 and opening <= shown and len(opening) == len(OPENING_TIMES)
    for finding in findings:
        # a frame's label conforms as a video label only if the opening shows one for 2 s
        finding.details["frame_conforms"] = finding.conforms
        finding.conforms = finding.conforms and long_enough
    notes = [f"frames checked at {', '.join(f'{at:.1f}' for _, at, _, _ in frames)} s"]
    return findings, notes


# -- audio ---------------------------------------------------------------------------------------


def _audio_detectors(
    samples: FloatArray, rate: int, *, offset_s: float = 0.0
) -> list[RhythmMatch | SpokenMatch]:
    return [
        *find_rhythm(samples, rate, offset_s=offset_s),
        *find_spoken_prompt(samples, rate, offset_s=offset_s),
    ]


def _check_audio(path: Path) -> tuple[list[Finding], list[str]]:
    matches, duration = scan_audio_file(path, _audio_detectors)
    edge = max(5.0, 0.1 * duration)
    findings = []
    for match in matches:
        where = "start" if match.start_s <= edge else "end" if match.end_s >= duration - edge else "middle"
        if isinstance(match, RhythmMatch):
            method, text = "rhythm", "rhythm prompt short-long-short-short (Morse AI)"
        else:
            method, text = "speech", f"spoken {SPOKEN_TEXT} (synthguard's bundled prompt)"
        findings.append(
            Finding(method=method, text=text, where=where, conforms=True, details=match.to_dict())
        )
    note = (
        "spoken prompts are recognised only as synthguard's own bundled clip "
        "(no speech recognition model is bundled)"
    )
    return findings, [note]


# -- entry point ---------------------------------------------------------------------------------


def check_file(path: str | os.PathLike[str], settings: Any = None, *, thorough: bool = False) -> CheckReport:
    """Look for explicit labels in one file; the report says what was found and where.

    ``settings`` is accepted for symmetry with the other entry points (the 5% rule and the wording
    rules are the standard's, not configuration). ``thorough`` adds a full-resolution OCR pass over
    the edge bands of images and frames (finds labels under about 2% of the shortest side; slower).

    Raises ``CorruptMediaError`` (unreadable media, zero-length audio, a video with no frames),
    ``UnsupportedFormatError`` (a format with no explicit label to look for, a video without a
    video stream), ``MediaLimitError`` (text over 64 MiB, an image over Pillow's pixel limit).
    """
    del settings
    path = Path(path)
    try:
        try:
            container = identify_path(path).container
        except OSError as exc:
            raise CorruptMediaError(f"cannot be read: {exc.strerror or exc}") from None
        modality = container.modality
        notes: list[str] = []
        if modality is Modality.TEXT:
            text, notes = _read_text(path, container)
            findings = check_text(text)
        elif modality is Modality.IMAGE:
            image, scale = _open_image(path, thorough)
            findings = check_image(image, thorough=thorough, scale=scale)
        elif modality is Modality.VIDEO:
            findings, notes = _check_video(path, thorough)
        else:
            findings, notes = _check_audio(path)
    except MediaError as exc:
        raise exc.with_path(path) from None
    return _report(path, container, findings, notes)
