"""The leaf format of the audit log (standard library only: an export bundle carries this file).

The leaf of record ``index`` is the UTF-8 canonical JSON (sorted keys, no insignificant space,
non-ASCII kept, no NaN) of::

    {"v": 1, "index": <int>, "time": "<UTC time, microseconds, Z>", "event": "...",
     "actor": "...", "subject": "...", "data_sha256": "<hex SHA-256 of the data's canonical JSON>"}

The record keeps the data's canonical JSON text, so its digest is recomputed from the text as stored
(and as exported), never from a re-serialisation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["LEAF_VERSION", "canonical_json", "leaf_bytes"]

#: Version of the leaf format; part of every leaf.
LEAF_VERSION = 1


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant space, non-ASCII kept; ``TypeError``/``ValueError`` if not JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def leaf_bytes(index: int, time: str, event: str, actor: str, subject: str, data: str) -> bytes:
    """The leaf of a record whose time is already formatted (``2026-11-28T18:00:00.123456Z``)."""
    leaf = {
        "v": LEAF_VERSION,
        "index": index,
        "time": time,
        "event": event,
        "actor": actor,
        "subject": subject,
        "data_sha256": hashlib.sha256(data.encode("utf-8")).hexdigest(),
    }
    return canonical_json(leaf).encode("utf-8")
