"""What applying an explicit (visible or audible) label did: shared by every modality."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["VisibleResult"]


@dataclasses.dataclass
class VisibleResult:
    """The outcome of one explicit label.

    ``modality`` is ``"text"``, ``"image"``, ``"audio"`` or ``"video"``; ``wording`` is the label text
    (or a description of the prompt for audio); ``placements`` has one dict per placed label, e.g.
    ``{"where": "bottom-right", "box": [x0, y0, x1, y1]}`` for an image, ``{"where": "start",
    "start_s": 0.0, "end_s": 2.0, ...}`` for audio or video, ``{"where": "prefix", "offset": 0}`` for
    text; ``glyph_height_fraction`` is the measured ink height of the label's text divided by the
    shortest side (images and video; ``None`` elsewhere); ``conforms`` says whether the label meets
    GB 45438 Chapter 5 as measured; ``details`` holds modality-specific facts (codec, quality, frames).
    """

    modality: str
    wording: str
    placements: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    glyph_height_fraction: float | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    conforms: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return dataclasses.asdict(self)
