"""The bundled label font: a subset of Noto Sans CJK SC Bold (SIL OFL 1.1), no system font needed.

``scripts/make-label-font`` makes ``assets/LabelSans-Bold.otf`` and the list of characters it covers;
:func:`label_font` loads it at a pixel size (cached) and :func:`missing_characters` names characters a
configured wording needs that the font lacks, so a wording is refused instead of rendered as boxes.
"""

from __future__ import annotations

import functools
import io
from importlib import resources
from typing import Final

from PIL import ImageFont

from synthguard.errors import ConfigError

__all__ = ["FONT_NAME", "check_renderable", "font_bytes", "font_path", "label_font", "missing_characters"]

FONT_NAME: Final = "LabelSans-Bold.otf"
_ASSETS: Final = resources.files("synthguard.visible") / "assets"


@functools.cache
def font_bytes() -> bytes:
    """The bundled font file's bytes."""
    return (_ASSETS / FONT_NAME).read_bytes()


def font_path() -> str:
    """A filesystem path of the bundled font (for ``ffmpeg drawtext`` and other tools)."""
    return str(_ASSETS / FONT_NAME)


@functools.cache
def _covered() -> frozenset[str]:
    text = (_ASSETS / "LabelSans-Bold.chars.txt").read_text(encoding="utf-8")
    return frozenset(text.rstrip("\n")) | {" "}


def missing_characters(text: str) -> str:
    """The characters of ``text`` the bundled font has no glyph for (sorted, unique)."""
    covered = _covered()
    return "".join(sorted({c for c in text if c not in covered}))


def check_renderable(text: str, setting: str = "visible wording") -> None:
    """Raise ``ConfigError`` when the bundled font cannot draw every character of ``text``."""
    missing = missing_characters(text)
    if missing:
        raise ConfigError(
            f"{setting} {text!r} has characters the bundled label font lacks: {missing}; "
            f"run scripts/make-label-font --extra-chars {missing!r}"
        )


@functools.lru_cache(maxsize=64)
def label_font(size: int) -> ImageFont.FreeTypeFont:
    """The bundled font at ``size`` pixels per em (cached; FreeType fonts are cheap to share)."""
    return ImageFont.truetype(io.BytesIO(font_bytes()), size=size)
