"""Shared fixtures: settings with keys, sample media made on the fly, the shared test data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synthguard.config import Settings
from synthguard.labels.security import generate_key

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PDQ = SHARED / "testdata" / "pdq"
PRODUCER = "001191110102MACQD9K64010000"
PROPAGATOR = "001191110102MACQD9K64020001"


@pytest.fixture(scope="session")
def ed25519_key() -> tuple[str, str]:
    return generate_key("ed25519")


@pytest.fixture
def ed25519_settings(ed25519_key: tuple[str, str]) -> Settings:
    return Settings(
        provider_code=PRODUCER,
        propagator_code=PROPAGATOR,
        signing_algorithm="ed25519",
        signing_key=ed25519_key[0],
    )


def require_tool(name: str) -> str:
    """The path of a Debian tool the test needs; CI installs it, so its absence is a failure."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (.ci/run installs it with apt-get)")
    return found
