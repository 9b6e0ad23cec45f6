"""Fixtures shared by the watermark tests: a keyed configuration and a real photo."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from synthguard.config import Settings
from tests.conftest import PDQ

WATERMARK_KEY = "test-watermark-key-0123456789"


@pytest.fixture
def watermark_settings() -> Settings:
    return Settings(watermark_key=WATERMARK_KEY)


@pytest.fixture(scope="session")
def photo_path() -> Path:
    path = PDQ / "bridge-mods" / "aaa-orig.jpg"
    if not path.exists():
        pytest.fail(f"{path} is missing (the shared test data)")
    return path


@pytest.fixture(scope="session")
def photo(photo_path: Path) -> Image.Image:
    """The bridge photo (1600x1004) at 1024x643, RGB."""
    with Image.open(photo_path) as image:
        return image.convert("RGB").resize((1024, 643), Image.Resampling.BICUBIC)
