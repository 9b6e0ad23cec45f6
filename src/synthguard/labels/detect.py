"""Every carrier of a file → one ``Detection`` report and a verdict.

The verdict follows the platform table of the Labeling Measures (Art. 6): the ``Label`` of a metadata
label when there is one ("1", "2" or "3"); "3" (suspected) when there is none but a trace was found
(an explicit label, a watermark, or an AIGC property that cannot be parsed); "none" otherwise.

What is checked (``checks``): the metadata label always; the watermark (``watermark``) when a
``watermark_key`` is configured, and a watermark found leads to its generation record when the store
holds one (``trace``); explicit labels (``visible``: wording rules, OCR, the rhythm prompt) only when
asked for, as OCR costs a few hundred milliseconds an image. A check not run says ``checked: false``.

Reading the metadata label touches only the container's header structures. Checking a signature
needs a digest of the payload, which is read in chunks (memory flat in file size) only when the label
holds a signature this installation can check; ``verify=False`` skips it.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from synthguard.aigc import AigcLabel
from synthguard.config import Settings, load_settings
from synthguard.errors import InvalidLabelError, MediaError, SynthguardError, UsageError
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
from synthguard.watermark.base import WatermarkDetection

__all__ = ["DEFAULT_CHECKS", "Check", "Detection", "MetadataFinding", "detect_file", "parse_checks"]


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


class Check(enum.Enum):
    """What ``detect_file`` may look for."""

    METADATA = "metadata"
    WATERMARK = "watermark"
    VISIBLE = "visible"


#: What ``detect_file`` checks unless told otherwise (OCR is asked for explicitly).
DEFAULT_CHECKS: Final = frozenset({Check.METADATA, Check.WATERMARK})


def parse_checks(text: str | Iterable[str]) -> frozenset[Check]:
    """``"metadata,visible"`` → checks; the metadata label is always among them."""
    names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    checks = {Check.METADATA}
    for name in names:
        if not name:
            continue
        try:
            checks.add(Check(name))
        except ValueError:
            allowed = ", ".join(c.value for c in Check)
            raise UsageError(f"unknown check {name!r} (choose from {allowed})") from None
    return frozenset(checks)


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """What one file carries. ``watermark`` and ``visible`` are ``None`` when not checked (no key,
    a format that carries none, or not asked for); ``trace`` is the generation record a watermark
    led to."""

    path: str
    container: Container
    metadata: MetadataFinding
    watermark: WatermarkDetection | None = None
    visible: dict[str, Any] | None = None
    trace: dict[str, Any] | None = None
    #: Why a check asked for did not run, or what went wrong in it (never fatal).
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if self.metadata.label is not None:
            return self.metadata.label.Label
        if self.metadata.found:  # an AIGC property that could not be parsed is a trace
            return "3"
        if self.watermark is not None and self.watermark.found:
            return "3"
        if self.visible is not None and self.visible.get("found"):
            return "3"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        watermark: dict[str, Any] = (
            {"found": False, "produce_id": None, "p_value": None}
            if self.watermark is None
            else self.watermark.to_dict()
        )
        watermark["checked"] = self.watermark is not None
        watermark["trace"] = self.trace
        visible = {"found": False} if self.visible is None else dict(self.visible)
        visible["checked"] = self.visible is not None
        return {
            "path": self.path,
            "container": self.container.value,
            "modality": self.container.modality.value,
            "metadata": self.metadata.to_dict(),
            "watermark": watermark,
            "visible": visible,
            "verdict": self.verdict,
            "notes": list(self.notes),
        }


def detect_file(
    path: str | os.PathLike[str],
    *,
    settings: Settings | None = None,
    keys: KeyRing | None = None,
    verify: bool = True,
    checks: Iterable[Check] = DEFAULT_CHECKS,
    visible_if_unlabeled: bool = False,
) -> Detection:
    """Read every carrier of ``path`` that ``checks`` names. A file without labels is a ``Detection``
    with ``found=False``; unreadable or unsupported files raise ``MediaError``.

    ``visible_if_unlabeled`` runs the explicit-label check (OCR) only when no metadata label was
    found: the verdict then costs OCR only where OCR can change it."""
    path = Path(path)
    checks = frozenset(checks)
    detection = _metadata(path, settings, keys, verify)
    if not checks - {Check.METADATA}:
        return detection
    settings = settings or load_settings()
    watermark: WatermarkDetection | None = None
    visible: dict[str, Any] | None = None
    trace: dict[str, Any] | None = None
    notes: list[str] = []
    if Check.WATERMARK in checks:
        from synthguard.watermark.files import detect_file as detect_watermark

        try:
            watermark = detect_watermark(path, settings)
        except MediaError as exc:  # the metadata label read; the content did not decode: say so
            notes.append(f"watermark not checked: {exc}")
        else:
            if watermark is None:
                notes.append("watermark not checked: no watermark_key, or a format that carries none")
            elif watermark.found and watermark.produce_id is not None:
                trace, note = _trace(watermark.produce_id, settings)
                notes.extend(note)
    if Check.VISIBLE in checks and visible_if_unlabeled and detection.metadata.label is not None:
        notes.append("visible not checked: the metadata label decides the verdict (--checks visible asks)")
    elif Check.VISIBLE in checks:
        from synthguard.visible.checker import check_file

        try:
            visible = check_file(path, settings).to_dict()
        except MediaError as exc:
            notes.append(f"visible not checked: {exc}")
    return dataclasses.replace(
        detection, watermark=watermark, visible=visible, trace=trace, notes=tuple(notes)
    )


def _trace(produce_id: str, settings: Settings) -> tuple[dict[str, Any] | None, list[str]]:
    """The generation record of ``produce_id`` when a store with such records is configured."""
    url = settings.resolved_database_url()
    if not settings.database_url and not Path(url.removeprefix("sqlite:///")).is_file():
        return None, []
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from synthguard.governance.generation import find_generation
        from synthguard.store import open_store

        with open_store(url) as store, store.session() as session:
            record = find_generation(session, produce_id)
    except SynthguardError as exc:
        return None, [f"no trace: {exc}"]
    except SQLAlchemyError as exc:  # a store without the generation table (not migrated): say so
        return None, [f"no trace: the store could not be read ({type(exc).__name__})"]
    return record.to_dict(), []


def _metadata(path: Path, settings: Settings | None, keys: KeyRing | None, verify: bool) -> Detection:
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
