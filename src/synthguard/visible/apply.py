"""One entry point for explicit labels: dispatch a file to its modality's labeller.

The modality comes from the bytes (``synthguard.media.identify``), never from the name; the name
only tells plain text, Markdown and HTML apart (they share a container). Audio goes to
``synthguard.visible.audio`` (imported when needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synthguard.errors import UnsupportedFormatError, UsageError
from synthguard.media import Container, Modality, identify_path
from synthguard.visible.result import VisibleResult
from synthguard.visible.video import ProgressCallback

__all__ = ["apply_visible_label"]

# Text containers whose markup this module can place a label in; office documents and PDF need
# their own layout engines.
_TEXT_CONTAINERS = frozenset({Container.MARKDOWN})


def apply_visible_label(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    settings: Any,
    progress: ProgressCallback | None = None,
) -> VisibleResult:
    """Write ``src`` with the explicit label its modality calls for to ``dst`` (atomically).

    Images and video get the text label drawn on them, text the text label, audio the audible
    prompt. ``progress`` is called during video labelling. Raises ``UnsupportedFormatError`` for a
    container no labeller here can write (DOCX, PDF, HEIF, ...), and the labellers' own errors.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    info = identify_path(src)
    if info.modality is Modality.IMAGE:
        if info.container in (Container.HEIF, Container.AVIF):
            raise UnsupportedFormatError(
                info.container.value, path=src, hint="visible labels are not drawn on HEIF/AVIF yet"
            )
        from synthguard.visible.image import label_image_file

        return label_image_file(src, dst, settings)
    if info.modality is Modality.VIDEO:
        from synthguard.visible.video import label_video_file

        return label_video_file(src, dst, settings, progress=progress)
    if info.modality is Modality.AUDIO:
        from synthguard.visible import audio

        result: VisibleResult = audio.label_audio_file(src, dst, settings)
        return result
    if info.container in _TEXT_CONTAINERS:
        from synthguard.visible.text import label_text_file

        return label_text_file(src, dst, settings)
    raise UnsupportedFormatError(
        info.container.value, path=src, hint="explicit labels are written into plain, Markdown and HTML text"
    )
