"""Generation records: from a content's ProduceID back to the real-name user, and the unlabeled-output log.

Every generated content gets a 64-bit ProduceID, which its metadata label and its watermark carry
(``aigc.ProduceID``). ``record_generation`` stores it with the user it was made for, the content's
SHA-256 and the labels applied, so that a copy whose metadata was stripped still leads back, through
``detect``'s watermark ``produce_id`` and ``find_generation``, to the user and their identity (masked).

Measures Art. 9: content may go out without an explicit (visible) label only to a user who accepted
the agreement for it, and the provider keeps a log of who received such content for at least six
months. A record without ``visible`` among its labels IS that log entry; it must name the agreement
version, which the user must have accepted (``ConflictError`` otherwise). ``unlabeled_log`` reads it.
``retention.purge_expired`` erases the user reference after ``retention_log_days`` (at least 183).

Each record calls ``record_event`` (``generation.recorded``) in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.aigc import ProduceID
from synthguard.audit import record_event
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance.documents import DocumentKind, has_accepted
from synthguard.governance.identity import IdentityView, aware_now, check_user_ref, insert_unique
from synthguard.governance.identity import get_identity as _get_identity
from synthguard.governance.models import GenerationRow, SubjectRow

__all__ = [
    "GenerationTrace",
    "GenerationView",
    "find_generation",
    "find_generations_by_digest",
    "record_generation",
    "unlabeled_log",
]

_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")
#: ``media.Modality`` values.
MODALITIES: Final = frozenset({"text", "image", "audio", "video"})
#: ``labels.base.LabelKind`` values; ``visible`` is the explicit label.
LABEL_KINDS: Final = frozenset({"visible", "watermark", "metadata"})


@dataclass(frozen=True, slots=True)
class GenerationView:
    produce_id: str
    user_ref: str | None
    modality: str
    content_digest: str
    labels: tuple[str, ...]
    explicit_label: bool
    unlabeled_agreement_version: str | None
    created_at: dt.datetime
    purged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "produce_id": self.produce_id,
            "user_ref": self.user_ref,
            "modality": self.modality,
            "content_digest": self.content_digest,
            "labels": list(self.labels),
            "explicit_label": self.explicit_label,
            "unlabeled_agreement_version": self.unlabeled_agreement_version,
            "created_at": self.created_at,
            "purged": self.purged,
        }


def _view(row: GenerationRow) -> GenerationView:
    return GenerationView(
        row.produce_id,
        row.user_ref,
        row.modality,
        row.content_digest,
        tuple(row.labels),
        row.explicit_label,
        row.unlabeled_agreement_version,
        row.created_at,
        row.purged_at is not None,
    )


@dataclass(frozen=True, slots=True)
class GenerationTrace:
    """A generation record and, when the user is registered, their identity (masked)."""

    generation: GenerationView
    identity: IdentityView | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation.to_dict(),
            "identity": self.identity.to_dict() if self.identity is not None else None,
        }


def _produce_id(text: str) -> str:
    value = text.strip().upper() if isinstance(text, str) else ""
    if not ProduceID.is_valid(value):
        raise UsageError("produce_id must be 16 hex digits")
    return value


def record_generation(
    session: Session,
    *,
    produce_id: str,
    user_ref: str,
    modality: str,
    content_digest: str,
    labels: Sequence[str],
    unlabeled_agreement_version: str | None,
    actor: str = "system",
    now: dt.datetime | None = None,
) -> GenerationView:
    """Record one generated content; audited as ``generation.recorded``.

    ``labels``: the ``LabelKind`` values applied. Without ``visible`` the content had no explicit
    label, so ``unlabeled_agreement_version`` must name a version of the unlabeled-output agreement the
    user accepted (``ConflictError`` when not accepted, ``UsageError`` when missing, or given for
    explicitly labeled content). ``ConflictError`` for a ProduceID already recorded.
    """
    now = aware_now(now)
    pid = _produce_id(produce_id)
    check_user_ref(user_ref)
    if modality not in MODALITIES:
        raise UsageError(f"modality must be one of {', '.join(sorted(MODALITIES))}")
    digest = content_digest.strip().lower()
    if not _DIGEST_RE.fullmatch(digest):
        raise UsageError("content_digest must be a SHA-256 in hex (64 digits)")
    kinds = sorted(set(labels))
    unknown = [k for k in kinds if k not in LABEL_KINDS]
    if unknown:
        raise UsageError(f"unknown label kinds: {', '.join(repr(k)[:40] for k in unknown[:5])}")
    explicit = "visible" in kinds
    if explicit and unlabeled_agreement_version is not None:
        raise UsageError("unlabeled_agreement_version is only for content without an explicit label")
    if not explicit:
        if not unlabeled_agreement_version:
            raise UsageError(
                "content without an explicit label needs the unlabeled-output agreement version the user "
                "accepted (Measures Art. 9)"
            )
        if not has_accepted(
            session, user_ref, DocumentKind.UNLABELED_OUTPUT_AGREEMENT, unlabeled_agreement_version
        ):
            raise ConflictError(
                f"user {user_ref!r} has not accepted version {unlabeled_agreement_version[:32]!r} of the "
                f"unlabeled-output agreement: the content must carry an explicit label"
            )
    if (
        session.scalars(sa.select(GenerationRow.id).where(GenerationRow.produce_id == pid)).first()
        is not None
    ):
        raise ConflictError(f"ProduceID {pid} is already recorded")
    row = GenerationRow(
        produce_id=pid,
        user_ref=user_ref,
        modality=modality,
        content_digest=digest,
        labels=kinds,
        explicit_label=explicit,
        unlabeled_agreement_version=unlabeled_agreement_version if not explicit else None,
        created_at=now,
    )
    insert_unique(session, row, f"ProduceID {pid} is already recorded")
    record_event(
        session,
        event="generation.recorded",
        actor=actor,
        subject=f"generation:{pid}",
        data={
            "user_ref": user_ref,
            "modality": modality,
            "content_digest": digest,
            "labels": kinds,
            "explicit_label": explicit,
            "unlabeled_agreement_version": row.unlabeled_agreement_version,
        },
    )
    return _view(row)


def find_generation(session: Session, produce_id: str) -> GenerationTrace:
    """The record of ``produce_id`` (from a watermark or a metadata label) and its user's identity.

    ``NotFoundError`` when no content with that ProduceID was recorded here.
    """
    pid = _produce_id(produce_id)
    row = session.scalars(sa.select(GenerationRow).where(GenerationRow.produce_id == pid)).one_or_none()
    if row is None:
        raise NotFoundError(f"no generation record for ProduceID {pid}")
    identity = None
    if row.user_ref is not None:
        registered = session.scalars(
            sa.select(SubjectRow.id).where(SubjectRow.user_ref == row.user_ref)
        ).first()
        if registered is not None:
            identity = _get_identity(session, row.user_ref)
    return GenerationTrace(_view(row), identity)


def find_generations_by_digest(
    session: Session, content_digest: str, *, limit: int = 100
) -> list[GenerationView]:
    """Records of content with this SHA-256 (an exact copy), oldest first."""
    digest = content_digest.strip().lower()
    if not _DIGEST_RE.fullmatch(digest):
        raise UsageError("content_digest must be a SHA-256 in hex (64 digits)")
    rows = session.scalars(
        sa.select(GenerationRow)
        .where(GenerationRow.content_digest == digest)
        .order_by(GenerationRow.created_at, GenerationRow.id)
        .limit(limit)
    )
    return [_view(row) for row in rows]


def unlabeled_log(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_ref: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[GenerationView]:
    """The Measures Art. 9 log: content delivered without an explicit label, oldest first."""
    query = sa.select(GenerationRow).where(GenerationRow.explicit_label.is_(False))
    if since is not None:
        query = query.where(GenerationRow.created_at >= aware_now(since))
    if until is not None:
        query = query.where(GenerationRow.created_at < aware_now(until))
    if user_ref is not None:
        query = query.where(GenerationRow.user_ref == check_user_ref(user_ref))
    query = query.order_by(GenerationRow.created_at, GenerationRow.id).limit(limit).offset(offset)
    return [_view(row) for row in session.scalars(query)]
