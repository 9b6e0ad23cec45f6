"""One entry point for watermarking files: dispatch on the modality found in the bytes.

``embed_file`` writes ``src`` with the watermark of its modality to ``dst`` (atomically, through
the modality's own writer); ``detect_file`` looks for one. Images, audio and video carry their
signal marks; text files (plain text and Markdown) carry the invisible-character mark of
``watermark.text`` in their prose only (``embed_prose``: never in code, front matter or links).
Office documents and PDF have no watermark here: ``embed_file`` refuses them with
``UnsupportedFormatError`` and ``detect_file`` returns ``None`` (not checked).

There is deliberately no function that removes a watermark (Provisions Art. 18).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from synthguard._io import atomic_output
from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, UnsupportedFormatError, UsageError
from synthguard.media import Container, Modality, identify_path
from synthguard.watermark.base import WatermarkDetection, watermark_secret

__all__ = ["detect_file", "embed_file", "embed_prose", "supports"]

#: Text containers whose characters can carry the text watermark.
_TEXT_CONTAINERS = frozenset({Container.MARKDOWN})
#: Image containers the image mark reads and writes (HEIF/AVIF: no encoder that keeps them intact).
_NO_IMAGE_MARK = frozenset({Container.HEIF, Container.AVIF})


def supports(container: Container) -> bool:
    """Whether files of ``container`` can carry a watermark here."""
    if container.modality is Modality.TEXT:
        return container in _TEXT_CONTAINERS
    return container not in _NO_IMAGE_MARK


def embed_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], produce_id: str, settings: Settings
) -> None:
    """Write ``src`` carrying a watermark of ``produce_id`` to ``dst``. Needs ``watermark_key``."""
    src, dst = Path(src), Path(dst)
    secret = watermark_secret(settings)
    container = identify_path(src).container
    if not supports(container):
        raise UnsupportedFormatError(container.value, path=src, hint="this format carries no watermark here")
    modality = container.modality
    if modality is Modality.IMAGE:
        from synthguard.watermark.image import embed_image_file

        embed_image_file(src, dst, produce_id, settings)
    elif modality is Modality.VIDEO:
        from synthguard.watermark.video import embed_video_file

        embed_video_file(src, dst, produce_id, settings)
    elif modality is Modality.AUDIO:
        from synthguard.watermark.audio import embed_audio_file

        embed_audio_file(src, dst, produce_id, settings)
    else:
        marked = embed_prose(_read_text(src), produce_id, secret)
        with atomic_output(dst) as out:
            out.write(marked.encode("utf-8"))


def detect_file(path: str | os.PathLike[str], settings: Settings) -> WatermarkDetection | None:
    """The watermark ``path`` carries, or ``None`` when its format carries none here or no
    ``watermark_key`` is configured (nothing can be checked without the key)."""
    path = Path(path)
    if not settings.watermark_key:
        return None
    container = identify_path(path).container
    if not supports(container):
        return None
    modality = container.modality
    if modality is Modality.IMAGE:
        from synthguard.watermark.image import detect_image_file

        return detect_image_file(path, settings)
    if modality is Modality.VIDEO:
        from synthguard.watermark.video import detect_video_file

        return detect_video_file(path, settings)
    if modality is Modality.AUDIO:
        from synthguard.watermark.audio import detect_audio_file

        return detect_audio_file(path, settings)
    from synthguard.watermark.text import detect_text

    return detect_text(_read_text(path), watermark_secret(settings), settings.watermark_p_threshold)


#: What the text watermark must never touch in a plain-text or Markdown file: front matter, fenced
#: and indented code, inline code, HTML tags, link targets and bare URLs (an invisible character
#: there breaks code and links when copied).
_PROTECTED: Final = re.compile(
    r"\A---\n.*?\n(?:---|\.\.\.)\n"  # YAML front matter
    r"|^(?P<fence>```+|~~~+)[^\n]*\n.*?(?:^(?P=fence)[ \t]*$|\Z)"  # fenced code, to its close
    r"|^(?: {4}|\t)[^\n]*$"  # indented code
    r"|(?P<ticks>`+)[^`]*?(?P=ticks)"  # inline code
    r"|<[^<>\n]*>"  # HTML tags and autolinks
    r"|\]\([^)\n]*\)"  # link and image targets
    r"|\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"  # bare URLs
    r"|\U000F0000",  # the placeholder itself, should the text hold it
    re.DOTALL | re.MULTILINE,
)
_PLACEHOLDER: Final = "\U000f0000"  # a private-use character: never a letter, so never carries


def embed_prose(text: str, produce_id: str, secret: bytes) -> str:
    """``embed_text`` on the prose of ``text`` only: every ``_PROTECTED`` span stands aside as one
    placeholder while the packets are placed, then comes back unchanged (``embed_text`` only inserts,
    so the k-th placeholder is the k-th span)."""
    from synthguard.watermark.text import embed_text

    spans = [m.group(0) for m in _PROTECTED.finditer(text)]
    marked = embed_text(_PROTECTED.sub(_PLACEHOLDER, text), produce_id, secret)
    pieces = marked.split(_PLACEHOLDER)
    if len(pieces) != len(spans) + 1:  # embed_text only inserts: this cannot happen
        raise AssertionError("protected spans were not kept")
    return "".join(piece + span for piece, span in zip(pieces, [*spans, ""], strict=True))


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptMediaError(f"not valid UTF-8 text at byte {exc.start}", path=path) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
