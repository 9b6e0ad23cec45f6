"""The one place that maps (container, kind) to labelers.

Labelers declare what they serve (``containers``); this module alone turns that around for lookup.
The table below says in which module a container's labeler lives, so that a command imports only the
module it needs (importing every labeler, with pikepdf, mutagen and PyYAML behind them, costs more
than labeling a photo). ``metadata_labelers()`` imports them all and checks that each serves exactly
the containers the table gives it and that names are unique; a test runs it, and so does any
command that lists labelers. Adding a container is one module plus one line here.
"""

from __future__ import annotations

import functools
import importlib
from typing import Final

from synthguard.errors import UnsupportedFormatError
from synthguard.labels.base import MetadataLabeler
from synthguard.media import Container

__all__ = ["metadata_labeler", "metadata_labelers"]

#: Container → ``module:Class`` under ``synthguard.labels.metadata``.
_METADATA_LABELERS: Final = {
    Container.JPEG: "jpeg:JpegLabeler",
    Container.PNG: "png:PngLabeler",
    Container.WEBP: "webp:WebpLabeler",
    Container.GIF: "gif:GifLabeler",
    Container.TIFF: "tiff:TiffLabeler",
    Container.HEIF: "heif:HeifLabeler",
    Container.AVIF: "heif:HeifLabeler",
    Container.MP4: "isobmff:IsobmffLabeler",
    Container.MOV: "isobmff:IsobmffLabeler",
    Container.M4A: "isobmff:IsobmffLabeler",
    Container.MATROSKA: "matroska:MatroskaLabeler",
    Container.WEBM: "matroska:MatroskaLabeler",
    Container.AVI: "avi:AviLabeler",
    Container.FLV: "flv:FlvLabeler",
    Container.WAV: "wav:WavLabeler",
    Container.MP3: "id3:Id3Labeler",
    Container.FLAC: "vorbis:VorbisCommentLabeler",
    Container.OGG_VORBIS: "vorbis:VorbisCommentLabeler",
    Container.OPUS: "vorbis:VorbisCommentLabeler",
    Container.DOCX: "ooxml:OoxmlLabeler",
    Container.XLSX: "ooxml:OoxmlLabeler",
    Container.PPTX: "ooxml:OoxmlLabeler",
    Container.PDF: "pdf:PdfLabeler",
    Container.MARKDOWN: "markdown:MarkdownLabeler",
}


@functools.cache
def _load(spec: str) -> MetadataLabeler:
    module_name, class_name = spec.split(":")
    module = importlib.import_module(f"synthguard.labels.metadata.{module_name}")
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, MetadataLabeler)):
        raise TypeError(f"{spec} is not a MetadataLabeler")
    expected = {c for c, s in _METADATA_LABELERS.items() if s == spec}
    if set(cls.containers) != expected:
        raise TypeError(
            f"{spec} declares {sorted(c.value for c in cls.containers)}, the registry gives it "
            f"{sorted(c.value for c in expected)}"
        )
    return cls()


def metadata_labeler(container: Container) -> MetadataLabeler:
    """The metadata labeler for ``container``; ``UnsupportedFormatError`` when there is none."""
    spec = _METADATA_LABELERS.get(container)
    if spec is None:
        raise UnsupportedFormatError(container.value, hint="no metadata carrier")
    return _load(spec)


@functools.cache
def metadata_labelers() -> tuple[MetadataLabeler, ...]:
    """Every metadata labeler, instantiated once, validated against the table."""
    labelers = tuple(_load(spec) for spec in dict.fromkeys(_METADATA_LABELERS.values()))
    names = [labeler.name for labeler in labelers]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise TypeError(f"duplicate labeler names: {sorted(duplicates)}")
    return labelers
