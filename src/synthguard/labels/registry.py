"""The one place that maps (container, kind) to labelers.

Labelers declare what they serve; this module alone inverts that into a lookup, and checks at import
that every name is unique and every container has exactly one metadata labeler. Adding a container
is one module plus one line in ``_METADATA_LABELERS``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Final

from synthguard.errors import UnsupportedFormatError
from synthguard.labels.base import MetadataLabeler
from synthguard.media import Container

__all__ = ["metadata_labeler", "metadata_labelers"]

#: ``module:Class`` under ``synthguard.labels.metadata``.
_METADATA_LABELERS: Final = (
    "avi:AviLabeler",
    "flv:FlvLabeler",
    "gif:GifLabeler",
    "heif:HeifLabeler",
    "id3:Id3Labeler",
    "isobmff:IsobmffLabeler",
    "jpeg:JpegLabeler",
    "markdown:MarkdownLabeler",
    "matroska:MatroskaLabeler",
    "ooxml:OoxmlLabeler",
    "pdf:PdfLabeler",
    "png:PngLabeler",
    "tiff:TiffLabeler",
    "vorbis:VorbisCommentLabeler",
    "wav:WavLabeler",
    "webp:WebpLabeler",
)


@functools.cache
def metadata_labelers() -> tuple[MetadataLabeler, ...]:
    """Every metadata labeler, instantiated once, validated."""
    labelers = []
    for spec in _METADATA_LABELERS:
        module_name, class_name = spec.split(":")
        module = importlib.import_module(f"synthguard.labels.metadata.{module_name}")
        cls = getattr(module, class_name)
        if not (isinstance(cls, type) and issubclass(cls, MetadataLabeler)):
            raise TypeError(f"{spec} is not a MetadataLabeler")
        labelers.append(cls())
    names = [labeler.name for labeler in labelers]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise TypeError(f"duplicate labeler names: {sorted(duplicates)}")
    served = [c for labeler in labelers for c in labeler.containers]
    doubly = {c for c in served if served.count(c) > 1}
    if doubly:
        raise TypeError(f"containers with two metadata labelers: {sorted(c.value for c in doubly)}")
    return tuple(labelers)


@functools.cache
def _by_container() -> dict[Container, MetadataLabeler]:
    return {c: labeler for labeler in metadata_labelers() for c in labeler.containers}


def metadata_labeler(container: Container) -> MetadataLabeler:
    """The metadata labeler for ``container``; ``UnsupportedFormatError`` when there is none."""
    try:
        return _by_container()[container]
    except KeyError:
        raise UnsupportedFormatError(container.value, hint="no metadata carrier") from None
