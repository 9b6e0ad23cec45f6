"""What a labeler is: its kind, what it serves, and the capabilities it declares.

A labeler declares the containers it serves (``containers``) and its ``kind``; containers know nothing
of labelers (``media.py``), and only ``registry.py`` turns that around for lookup. Capabilities beyond
the core are small mixins checked with ``issubclass`` (``InPlaceWriter``), never methods that raise
``NotImplementedError``.

A metadata labeler's contract (``tests/contracts/metadata_contract.py`` checks it for each one):

- ``read`` returns the raw JSON text of the AIGC label, from the standard carrier first, else from a
  variant seen in the wild; ``None`` when there is none. It touches only header structures: never the
  media payload (``mdat``, clusters, scan data, audio frames).
- ``write`` copies ``src`` to ``dst`` with exactly one label (the standard carrier), every other
  piece of metadata kept, and the media payload byte-identical. Writing over an existing label
  replaces it in place; variants (a ``tEXt AIGC`` chunk, an EXIF UserComment label) are left to a
  separate, explicit migration, never silently stripped.
- ``payload`` yields the bytes of the media payload (pixels' coded data, audio frames, ``mdat``),
  which no metadata write changes: the label's signature binds to their digest.
- Malformed input raises ``CorruptMediaError`` (with an offset) or ``MediaLimitError``; a format the
  module does not serve raises ``UnsupportedFormatError``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator
from typing import BinaryIO, ClassVar

from synthguard.media import Container

__all__ = ["InPlaceWriter", "LabelKind", "MetadataLabeler"]


class LabelKind(enum.Enum):
    """Kinds of label, in the order the pipeline applies them (GB 45438: explicit, then implicit)."""

    VISIBLE = "visible"
    WATERMARK = "watermark"
    METADATA = "metadata"


class MetadataLabeler(abc.ABC):
    """Writes and reads the Annex E ``AIGC`` property in one container family."""

    #: Stable name; appears in reports and never changes.
    name: ClassVar[str]
    kind: ClassVar[LabelKind] = LabelKind.METADATA
    containers: ClassVar[frozenset[Container]]
    #: Where the label goes, in words, for reports and docs (e.g. "XMP in APP1").
    carrier: ClassVar[str]

    @abc.abstractmethod
    def read(self, src: BinaryIO) -> str | None:
        """The AIGC JSON text found in ``src``, or ``None``."""

    @abc.abstractmethod
    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        """Copy ``src`` into the empty ``dst`` with ``label_json`` as its one label."""

    @abc.abstractmethod
    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        """The media payload's bytes, in file order, in chunks."""


class InPlaceWriter(abc.ABC):
    """Capability: the label can be written into the file itself without rewriting the payload."""

    @abc.abstractmethod
    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        """Write the label into ``f`` (opened ``r+b``). Return ``False``, with ``f`` unchanged, when
        the file's layout does not allow it (then the caller rewrites the file)."""
