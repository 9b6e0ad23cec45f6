"""Signed checkpoints of the audit log: Ed25519 over C2SP signed-note tree heads (``audit.notes``).

A checkpoint is made every ``audit_checkpoint_interval`` records (by ``record_event`` when it is given
the settings, else by ``make_due_checkpoints``, which ``audit checkpoint`` and the API call) and on
demand (``make_checkpoint``). A checkpoint for a past size can be made at any time: its root is
computed from the stored complete-subtree hashes. Each checkpoint is stored with its note, so an
inspector needs only the notes and the public key.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from synthguard.audit import log, notes
from synthguard.audit.models import AuditCheckpointRow
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, IntegrityError

__all__ = [
    "CheckpointSigner",
    "StoredCheckpoint",
    "checkpoint_if_due",
    "latest_checkpoint",
    "list_checkpoints",
    "make_checkpoint",
    "make_due_checkpoints",
    "signer_from_settings",
]

_LOG: Final = logging.getLogger(__name__)
_TABLE = cast(sa.Table, AuditCheckpointRow.__table__)


@dataclass(frozen=True)
class CheckpointSigner:
    """The Ed25519 key and key name (the log's origin) that sign checkpoints."""

    origin: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return notes.key_hash(self.origin, self.public_key).hex()

    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def sign(self, size: int, root: bytes) -> str:
        """The signed note of the tree head ``(size, root)``."""
        body = notes.checkpoint_body(self.origin, size, root)
        signature = self.private_key.sign(body.encode("utf-8"))
        return body + "\n" + notes.signature_line(self.origin, self.public_key, signature)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint row."""

    size: int
    root: bytes
    origin: str
    note: str
    key_name: str
    key_id: str
    created_at: dt.datetime
    actor: str


def _key_text(settings: Settings) -> str:
    if settings.audit_checkpoint_key:
        return settings.audit_checkpoint_key
    if settings.audit_checkpoint_key_file:
        try:
            return Path(settings.audit_checkpoint_key_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"cannot read audit checkpoint key file {settings.audit_checkpoint_key_file}: {error}"
            ) from error
    return ""


def has_signer(settings: Settings) -> bool:
    """Whether a checkpoint key is configured (the key is not loaded)."""
    return bool(settings.audit_checkpoint_key or settings.audit_checkpoint_key_file)


def signer_from_settings(settings: Settings) -> CheckpointSigner:
    """The checkpoint signer; ``ConfigError`` when no key is configured or it is not an Ed25519 PEM key."""
    text = _key_text(settings)
    if not text:
        raise ConfigError(
            "no audit checkpoint key: set audit_checkpoint_key or audit_checkpoint_key_file "
            "(an Ed25519 private key in PEM; see docs/audit.md)"
        )
    try:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as error:
        raise ConfigError(f"the audit checkpoint key is not a PEM private key: {error}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the audit checkpoint key must be an Ed25519 key")
    origin = settings.audit_origin
    try:
        notes.checkpoint_body(origin, 0, bytes(32))
    except notes.NoteError as error:
        raise ConfigError(f"audit_origin {origin!r} cannot be a checkpoint origin") from error
    if " " in origin or "+" in origin:
        raise ConfigError(f"audit_origin {origin!r} may not contain spaces or '+' (it names the key)")
    return CheckpointSigner(origin, key)


def public_key_from_pem(text: str) -> bytes:
    """The raw 32 bytes of an Ed25519 public key in PEM (``ConfigError`` otherwise)."""
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as error:
        raise ConfigError(f"not a PEM public key: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the audit public key must be an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _store(session: Session, signer: CheckpointSigner, head: log.TreeHead, actor: str) -> StoredCheckpoint:
    existing = _get(session, head.size)
    if existing is not None:
        if existing.root != head.root:
            raise IntegrityError(
                f"checkpoint of size {head.size} commits to a different root than the tree has now: "
                "the log was altered"
            )
        return existing
    note = signer.sign(head.size, head.root)
    now = dt.datetime.now(dt.UTC)
    row = StoredCheckpoint(
        head.size, head.root, signer.origin, note, signer.origin, signer.key_id, now, actor
    )
    session.execute(
        sa.insert(_TABLE).values(
            size=row.size,
            root_hash=row.root,
            origin=row.origin,
            note=row.note,
            key_name=row.key_name,
            key_id=row.key_id,
            created_at=row.created_at,
            actor=row.actor,
        )
    )
    return row


def make_checkpoint(
    session: Session, settings: Settings, *, size: int | None = None, actor: str = "system"
) -> StoredCheckpoint:
    """Sign and store a checkpoint of the tree of ``size`` records (default: all); idempotent per size.

    ``ConflictError`` for an empty log; ``IntegrityError`` when a stored checkpoint of that size has
    another root (the log was altered).
    """
    signer = signer_from_settings(settings)
    head = log.root_at(session, size)
    if head.size == 0:
        raise ConflictError("the audit log is empty: there is nothing to checkpoint")
    return _store(session, signer, head, actor)


def checkpoint_if_due(session: Session, settings: Settings, head: log.TreeHead) -> StoredCheckpoint | None:
    """For ``record_event``: sign ``head`` when its size is a multiple of the interval and a key is set."""
    interval = settings.audit_checkpoint_interval
    if interval <= 0 or head.size % interval or not has_signer(settings):
        return None
    try:
        signer = signer_from_settings(settings)
    except ConfigError as error:
        # A broken key must not stop governance writes (complaints must still be accepted): the
        # record commits, the checkpoint is missing, and ``audit checkpoint --due`` fails loudly.
        _LOG.error("audit checkpoint of size %d not signed: %s", head.size, error)
        return None
    return _store(session, signer, head, "system")


def make_due_checkpoints(
    session: Session, settings: Settings, *, limit: int = 1000
) -> list[StoredCheckpoint]:
    """Sign every interval checkpoint (size a multiple of the interval) that is missing, oldest first.

    Each root comes from O(log n) stored nodes; at most ``limit`` are made in one call.
    """
    interval = settings.audit_checkpoint_interval
    if interval <= 0:
        return []
    signer = signer_from_settings(settings)
    size = log.current_size(session)
    have = set(
        session.execute(
            sa.select(_TABLE.c.size).where(_TABLE.c.size % interval == 0, _TABLE.c.size <= size)
        ).scalars()
    )
    made: list[StoredCheckpoint] = []
    for wanted in range(interval, size + 1, interval):
        if wanted not in have:
            made.append(_store(session, signer, log.root_at(session, wanted), "system"))
            if len(made) >= limit:
                break
    return made


def _row(row: sa.Row[tuple[object, ...]]) -> StoredCheckpoint:
    mapping = row._mapping
    return StoredCheckpoint(
        size=int(mapping["size"]),
        root=bytes(mapping["root_hash"]),
        origin=str(mapping["origin"]),
        note=str(mapping["note"]),
        key_name=str(mapping["key_name"]),
        key_id=str(mapping["key_id"]),
        created_at=mapping["created_at"],
        actor=str(mapping["actor"]),
    )


def _get(session: Session, size: int) -> StoredCheckpoint | None:
    row = session.execute(sa.select(_TABLE).where(_TABLE.c.size == size)).one_or_none()
    return None if row is None else _row(row)


def list_checkpoints(
    session: Session, *, limit: int | None = None, offset: int = 0
) -> list[StoredCheckpoint]:
    """Stored checkpoints, smallest size first."""
    query = sa.select(_TABLE).order_by(_TABLE.c.size).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_row(row) for row in session.execute(query)]


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    """The checkpoint of the largest size, ``None`` when there is none."""
    row = session.execute(sa.select(_TABLE).order_by(_TABLE.c.size.desc()).limit(1)).one_or_none()
    return None if row is None else _row(row)
