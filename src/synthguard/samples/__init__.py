"""Sample media bundled with the package (see README.md here)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEMO_PROPAGATOR_CODE", "DEMO_PROVIDER_CODE", "sample_path"]

#: A provider code with valid check characters, made up for demonstrations (not a real company).
DEMO_PROVIDER_CODE = "001191110108DEMQ00018H10001"
DEMO_PROPAGATOR_CODE = "001191310115PLAT0002X420001"


def sample_path(name: str = "sample.jpg") -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))
