"""Fixtures shared by the explicit-label tests (each helper adds its own below; keep them small)."""

from __future__ import annotations

import pytest

from synthguard.config import Settings


@pytest.fixture
def visible_settings() -> Settings:
    """Default settings: AI生成 / 人工智能生成, bottom-right, 5%, 2 s at the start, text prefix."""
    return Settings()


@pytest.fixture(scope="session")
def other_font() -> str:
    """A CJK font that is not the bundled label font (Debian's fonts-wqy-microhei; CI installs it)."""
    from pathlib import Path

    path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    if not path.is_file():
        pytest.fail(f"{path} is missing: install fonts-wqy-microhei (.ci/run installs it)")
    return str(path)
