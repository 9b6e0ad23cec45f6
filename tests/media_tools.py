"""Helpers shared by the container tests (``tests/labels/metadata``): sample media made with ffmpeg and
Pillow, the independent readers the tests check a labeler's output with (ffprobe, ffmpeg, PyAV,
exiftool, Pillow), and small file doubles that record what a reader pulls.

Nothing here asserts what a labeler must do; a helper only fails when the tool it runs fails (or,
where asked with ``clean_stderr``, when the tool complains on stderr).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageCms

from synthguard.aigc import AigcLabel
from synthguard.labels.base import MetadataLabeler
from tests.conftest import PDQ, require_tool

#: The ffmpeg inputs of a small test video, then the start of a second lavfi input: an audio filter
#: (``"sine=…"``) must follow.
LAVFI = ("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i")
#: Images of every Pillow mode, in the shared test data.
MODES = PDQ / "misc-images" / "modes"


# -- writing samples and labeled copies -----------------------------------------------------------


def write_samples(folder: Path, samples: Mapping[str, bytes]) -> list[Path]:
    """Write each ``name: bytes`` of ``samples`` to ``folder / name``; the paths, in order."""
    paths = []
    for name, data in samples.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def copy_modes(folder: Path, names: Iterable[str]) -> list[Path]:
    """Copy the named files of :data:`MODES` into ``folder``; the copies, in order."""
    copies = []
    for name in names:
        copy = folder / name
        shutil.copy(MODES / name, copy)
        copies.append(copy)
    return copies


def _label_text(label: AigcLabel | str) -> str:
    return label if isinstance(label, str) else label.to_json()


def label_copy(labeler: MetadataLabeler, src: Path, dst: Path, label: AigcLabel | str) -> bytes:
    """``labeler.write`` from ``src`` into ``dst`` (opened ``w+b``, as the contract does); the bytes
    written. ``label`` is a label or its JSON text."""
    with src.open("rb") as fin, dst.open("w+b") as fout:
        labeler.write(fin, fout, _label_text(label))
    return dst.read_bytes()


def label_copies(
    labeler: MetadataLabeler, sources: Iterable[Path], folder: Path, label: AigcLabel | str
) -> list[Path]:
    """:func:`label_copy` of each source into ``folder / f"out-{name}"``; the outputs, in order."""
    outputs = []
    for src in sources:
        outputs.append(folder / f"out-{src.name}")
        label_copy(labeler, src, outputs[-1], label)
    return outputs


def label_bytes(labeler: MetadataLabeler, data: bytes, label: AigcLabel | str) -> bytes:
    """``labeler.write`` from memory to memory."""
    out = io.BytesIO()
    labeler.write(io.BytesIO(data), out, _label_text(label))
    return out.getvalue()


def read_bytes(labeler: MetadataLabeler, data: bytes) -> str | None:
    """``labeler.read`` of in-memory bytes: the raw label text, or None."""
    return labeler.read(io.BytesIO(data))


# -- ffmpeg, ffprobe, PyAV --------------------------------------------------------------------------


def run_ffmpeg(*args: str, clean_stderr: bool = False) -> bytes:
    """``ffmpeg -v error ARGS``, which must succeed; what it wrote to stdout. With ``clean_stderr`` it
    must also write nothing to stderr (otherwise stderr is left to pytest's capture)."""
    done = subprocess.run(
        [require_tool("ffmpeg"), "-v", "error", *args],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if clean_stderr else None,
    )
    if clean_stderr:
        assert done.stderr == b"", done.stderr
    return done.stdout


def ffmpeg_samples(
    runs: Mapping[str, Sequence[str]], finish: Callable[[str, Path], None] | None = None
) -> dict[str, bytes]:
    """For each ``name: args`` of ``runs``, ``ffmpeg -v error ARGS OUT`` with ``OUT`` named ``name`` in
    a temporary folder (its suffix picks the muxer); ``finish(name, OUT)``, when given, may edit the
    output before its bytes are taken. The bytes made, by name, in order."""
    made: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in runs.items():
            out = Path(tmp) / name
            run_ffmpeg(*args, str(out))
            if finish is not None:
                finish(name, out)
            made[name] = out.read_bytes()
    return made


def ffmpeg_decode(path: Path, *, xerror: bool = False, clean_stderr: bool = False) -> None:
    """Decode every stream of ``path`` to ffmpeg's null muxer; fails if ffmpeg does (at the first
    decoding error with ``xerror``), or, with ``clean_stderr``, if it reports any error."""
    run_ffmpeg(
        *(["-xerror"] if xerror else []), "-i", str(path), "-f", "null", "-", clean_stderr=clean_stderr
    )


def decode_pcm(path: Path, *, clean_stderr: bool = False) -> bytes:
    """The audio of ``path`` decoded by ffmpeg to signed 16-bit little-endian PCM."""
    return run_ffmpeg("-i", str(path), "-f", "s16le", "-", clean_stderr=clean_stderr)


def ffprobe(path: Path, *show: str, loglevel: str = "error", clean_stderr: bool = False) -> dict[str, Any]:
    """``ffprobe -v LOGLEVEL SHOW… -of json PATH`` parsed. ``show`` defaults to ``-show_format
    -show_streams``; with ``clean_stderr`` ffprobe must print nothing at ``loglevel`` or above."""
    out = subprocess.run(
        [
            require_tool("ffprobe"),
            "-v",
            loglevel,
            *(show or ("-show_format", "-show_streams")),
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    if clean_stderr:
        assert out.stderr == "", out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def tags_and_streams(
    probe: Mapping[str, Any], stream_keys: Sequence[str], skip_tags: Collection[str] = ("AIGC",)
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """From an :func:`ffprobe` result: the format tags but ``skip_tags``, and the ``stream_keys`` of
    each stream (None where a stream lacks one)."""
    tags = {k: v for k, v in probe["format"].get("tags", {}).items() if k not in skip_tags}
    return tags, [{k: s.get(k) for k in stream_keys} for s in probe["streams"]]


def packets(path: Path) -> list[tuple[int, int | None, int | None, bytes]]:
    """``(stream index, pts, dts, bytes)`` of every non-empty packet, as PyAV demuxes them."""
    with av.open(str(path)) as container:
        return [(p.stream.index, p.pts, p.dts, bytes(p)) for p in container.demux() if p.size]


# -- exiftool ---------------------------------------------------------------------------------------

_EXIFTOOL_IGNORED_GROUPS = {"System", "File", "Composite", "XMP-TC260"}


def exiftool_json(paths: Sequence[Path], *options: str, allow_errors: bool = False) -> list[dict[str, Any]]:
    """``exiftool -j OPTIONS PATHS``: one record per file. exiftool must succeed; with
    ``allow_errors`` it may also exit 1 ("errors reported", which then show in the records)."""
    out = subprocess.run(
        [require_tool("exiftool"), "-j", *options, *map(str, paths)],
        check=not allow_errors,
        capture_output=True,
        text=True,
    )
    if allow_errors:
        assert out.returncode in (0, 1), out.stderr
    records: list[dict[str, Any]] = json.loads(out.stdout)
    return records


def exiftool_record(path: Path, *options: str) -> dict[str, Any]:
    """The record of ``exiftool -j OPTIONS PATH`` (which must succeed)."""
    return exiftool_json([path], *options)[0]


def exiftool_tags(path: Path) -> dict[str, Any]:
    """Every tag exiftool reads, by group, except file-system, composite and TC260 ones."""
    # exit status 1 means "errors reported", which the comparison covers (ExifTool:Error)
    record = exiftool_json([path], "-a", "-G1", "-s", "-b", "-n", allow_errors=True)[0]
    return {
        k: v
        for k, v in record.items()
        if k not in ("SourceFile", "ExifTool:ExifToolVersion")
        and k.split(":")[0] not in _EXIFTOOL_IGNORED_GROUPS
    }


def exiftool_labels(paths: list[Path]) -> dict[str, Any]:
    """``-XMP-TC260:AIGC`` of each file, read by exiftool in one run: name -> value."""
    records = exiftool_json(paths, "-XMP-TC260:AIGC", "-XMP-dc:Title", allow_errors=True)
    return {Path(r["SourceFile"]).name: r for r in records}


def assert_exiftool_reads_label(
    labeler: MetadataLabeler, sources: list[Path], folder: Path, titled: Iterable[str]
) -> None:
    """Label every source; exiftool reads the label back from every output, and the other tool's
    XMP title (``A title``) from the outputs of the sources named in ``titled``."""
    from synthguard.aigc import AigcLabel
    from tests.contracts.metadata_contract import make_label

    label = make_label()
    outputs = label_copies(labeler, sources, folder, label)
    records = exiftool_labels(outputs)
    for out in outputs:
        assert AigcLabel.parse(records[out.name]["Aigc"]) == label, out.name
    for name in titled:
        assert records[f"out-{name}"]["Title"] == "A title", name


# -- images and their metadata ----------------------------------------------------------------------

XPACKET_BEGIN = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
XPACKET_END = b'<?xpacket end="w"?>'
#: Another tool's XMP (a title and a creator tool), without the packet wrapper.
XMP_META = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="unit-test">'
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">A title</rdf:li></rdf:Alt></dc:title>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def xmp_packet(padding: int) -> bytes:
    """An XMP packet with a title and a creator tool, and ``padding`` spaces before its end."""
    return XPACKET_BEGIN + XMP_META + b" " * padding + XPACKET_END


#: Enough padding for the label to be written in place.
OTHER_XMP = xmp_packet(2000)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
_INFO_IGNORED = {"xmp", "XML:com.adobe.xmp", "version", "extension"}


def gradient(mode: str, size: tuple[int, int] = (40, 30), shift: int = 0) -> Image.Image:
    """A deterministic colour gradient in ``mode`` (RGBA gets a gradient alpha too)."""
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 6 + shift) % 256, (y * 8) % 256, (x * y + shift) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    if mode == "RGBA":
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(size))
        return rgba
    return image.convert(mode)


def tiny_png() -> bytes:
    """A 4×4 red PNG, as cover art."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def exif_bytes() -> bytes:
    """EXIF with an orientation and a camera make."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "UnitCam"
    return exif.tobytes()


def user_comment(label: AigcLabel) -> bytes:
    """An EXIF UserComment (ASCII) holding ``{"AIGC": label}``: a variant some writers use."""
    return b"ASCII\x00\x00\x00" + json.dumps({"AIGC": label.to_dict()}).encode()


def user_comment_exif(label: AigcLabel) -> bytes:
    """EXIF whose Exif IFD holds :func:`user_comment` of ``label``."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = user_comment(label)
    return exif.tobytes()


def pixel_digest(im: Image.Image) -> list[str]:
    """A digest of every frame's pixels (and palette), as Pillow decodes them."""
    digests = []
    for index in range(getattr(im, "n_frames", 1)):
        im.seek(index)
        im.load()
        palette = im.getpalette() or []
        digests.append(hashlib.sha256(im.mode.encode() + im.tobytes() + bytes(palette)).hexdigest())
    return digests


def image_info(path: Path) -> dict[str, Any]:
    """What Pillow sees: format, mode, size, frames, pixels, ICC/EXIF/text and other info."""
    with Image.open(path) as im:
        im.load()
        info = {k: v for k, v in im.info.items() if k not in _INFO_IGNORED}
        text = getattr(im, "text", None)
        result: dict[str, Any] = {
            "format": im.format,
            "mode": im.mode,
            "size": im.size,
            "frames": getattr(im, "n_frames", 1),
            "info": info,
            "text": {k: v for k, v in (text or {}).items() if k not in _INFO_IGNORED},
            "exif": {k: v for k, v in im.getexif().items() if k != 700},
        }
        result["pixels"] = pixel_digest(im)
        return result


def image_metadata(path: Path) -> dict[str, Any]:
    """What Pillow sees of an image's metadata: EXIF, ICC profile, size, mode, and the XMP
    descriptions other than the label (None when there are none)."""
    with Image.open(path) as im:
        xmp = im.getxmp() if hasattr(im, "getxmp") else {}
        description = (xmp.get("xmpmeta", {}) or {}).get("RDF", {}).get("Description", {})
        items = description if isinstance(description, list) else [description]
        kept = [{k: v for k, v in d.items() if k not in ("AIGC", "about")} for d in items if d]
        return {
            "exif": dict(im.getexif()),
            "icc": im.info.get("icc_profile"),
            "size": im.size,
            "mode": im.mode,
            "xmp": [d for d in kept if d] or None,
        }


# -- file doubles -----------------------------------------------------------------------------------


class _CountsReads:
    """Mixin for a file class: ``count`` is the number of bytes read through ``read`` and
    ``readinto``."""

    count = 0

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = super().read(size)  # type: ignore[misc]
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n: int | None = super().readinto(buffer)  # type: ignore[misc]
        self.count += n or 0
        return n or 0


class CountingReader(_CountsReads, io.BytesIO):
    """A BytesIO that counts the bytes a reader pulls (to show a reader stops early)."""


class CountingFile(_CountsReads, io.FileIO):
    """A raw file that counts the bytes read through it."""


class RecordingFile(io.BytesIO):
    """A BytesIO that remembers which byte ranges were read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[tuple[int, int]] = []

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.reads.append((start, start + len(data)))
        return data

    def touched(self, start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in self.reads)
