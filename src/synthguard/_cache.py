"""A disk cache for derived tables that are slow to build and depend only on installed packages.

Some tables are derived from a dependency's data at first use (the pinyin readings of 42,000
characters take about 0.5 s to derive from pypinyin). ``cached_json(name, build)`` keeps the result
as JSON in the cache folder, so a command that starts many times (``synthguard review``) pays once.
``name`` must change whenever the result could: it carries the versions of the packages it is derived
from and a format number.

The folder is ``SYNTHGUARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/synthguard``, else
``~/.cache/synthguard``; ``SYNTHGUARD_CACHE_DIR=off`` switches the cache off. JSON (never pickle): a
file someone else wrote can give a wrong table at worst, never run code. The cache is only ever an
optimisation: a missing, unreadable, unwritable or malformed file means the table is built again,
and files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

__all__ = ["cache_dir", "cached_json"]

_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,120}")


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is switched off."""
    configured = os.environ.get("SYNTHGUARD_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synthguard"


def cached_json(name: str, build: Callable[[], Any], *, check: Callable[[Any], bool] = bool) -> Any:
    """``build()``'s JSON-serialisable result, read from the cache when a copy named ``name`` is there
    and passes ``check``; else built and stored (best effort)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad cache name {name!r}")
    folder = cache_dir()
    path = folder / f"{name}.json" if folder is not None else None
    if path is not None:
        try:
            value = json.loads(path.read_bytes())
            if check(value):
                return value
        except (OSError, ValueError):
            pass
    value = build()
    if path is not None:
        _store(path, value)
    return value


def _store(path: Path, value: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh, ensure_ascii=False, separators=(",", ":"))
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # an optimisation only: a read-only home or a full disk must not stop a review
