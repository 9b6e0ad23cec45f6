"""Every carrier of a file → one ``Detection`` report and a verdict.

The verdict follows the platform table of the Labeling Measures (Art. 6): the ``Label`` of a metadata
label when there is one ("1", "2" or "3"); "3" (suspected) when there is none but a trace was found
(an explicit label, a watermark, or an AIGC property that cannot be parsed); "none" otherwise.

Reading the metadata label touches only the container's header structures. Checking a signature
needs a digest of the payload, which is read in chunks (memory flat in file size) only when the label
holds a signature this installation can check; ``verify=False`` skips it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from synthguard.aigc import AigcLabel
from synthguard.config import Settings, load_settings
from synthguard.errors import InvalidLabelError, MediaError
from synthguard.labels.registry import metadata_labeler
from synthguard.labels.security import (
    KeyRing,
    SignatureCheck,
    SignatureStatus,
    Slot,
    has_signature,
    payload_digest,
    summarize,
    verify_label,
)
from synthguard.media import Container, identify

__all__ = ["Detection", "MetadataFinding", "detect_file"]


@dataclasses.dataclass(frozen=True, slots=True)
class MetadataFinding:
    found: bool
    label: AigcLabel | None = None
    raw: str | None = None
    carrier: str | None = None
    signature: SignatureStatus = SignatureStatus.ABSENT
    checks: tuple[SignatureCheck, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "label": self.label.to_dict() if self.label else None,
            "carrier": self.carrier,
            "signature": self.signature.value,
            "signatures": [
                {"slot": c.slot.value, "status": c.status.value, "detail": c.detail} for c in self.checks
            ],
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """What one file carries. ``watermark`` and ``visible`` say ``checked: false`` until those
    detectors are installed; their ``found`` is then ``False``."""

    path: str
    container: Container
    metadata: MetadataFinding
    watermark_checked: bool = False
    visible_checked: bool = False

    @property
    def verdict(self) -> str:
        if self.metadata.label is not None:
            return self.metadata.label.Label
        if self.metadata.found:  # an AIGC property that could not be parsed is a trace
            return "3"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "container": self.container.value,
            "modality": self.container.modality.value,
            "metadata": self.metadata.to_dict(),
            "watermark": {
                "found": False,
                "produce_id": None,
                "p_value": None,
                "checked": self.watermark_checked,
            },
            "visible": {"found": False, "checked": self.visible_checked},
            "verdict": self.verdict,
        }


def detect_file(
    path: str | os.PathLike[str],
    *,
    settings: Settings | None = None,
    keys: KeyRing | None = None,
    verify: bool = True,
) -> Detection:
    """Read every carrier of ``path``. A file without labels is a ``Detection`` with
    ``found=False``; unreadable or unsupported files raise ``MediaError``."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise MediaError("no such file", path=path) from None
    except OSError as exc:
        raise MediaError(f"cannot open: {exc.strerror}", path=path) from None
    try:
        with handle:
            container = identify(handle).container
            labeler = metadata_labeler(container)
            raw = labeler.read(handle)
            if raw is None:
                finding = MetadataFinding(found=False)
            else:
                try:
                    label = AigcLabel.parse(raw)
                except InvalidLabelError as exc:
                    finding = MetadataFinding(found=True, raw=raw, carrier=labeler.carrier, error=str(exc))
                else:
                    checks: list[SignatureCheck] = []
                    if has_signature(label) and not verify:
                        checks = [
                            SignatureCheck(
                                Slot.GENERATOR, SignatureStatus.UNCHECKED, "verification was not asked for"
                            )
                        ]
                    elif has_signature(label):
                        if keys is None:
                            keys = KeyRing.from_settings(settings or load_settings())
                        checks = verify_label(
                            label,
                            container.value,
                            lambda alg: payload_digest(labeler.payload(handle), alg),
                            keys,
                        )
                    finding = MetadataFinding(
                        found=True,
                        label=label,
                        raw=raw,
                        carrier=labeler.carrier,
                        signature=summarize(checks),
                        checks=tuple(checks),
                    )
    except MediaError as exc:
        raise exc.with_path(path) from None
    return Detection(os.fspath(path), container, finding)
