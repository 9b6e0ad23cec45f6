"""Declarative models of the audit log (tables created only by the migrations in ``store/migrations``).

- ``audit_records``: one row per appended record, keyed by its 0-based index in the log. The row
  holds exactly what the leaf is computed from (see ``audit.tree.leaf_bytes``): time, event, actor,
  subject and the canonical JSON of the data. Rows are never updated or deleted.
- ``audit_nodes``: the hash of every COMPLETE subtree, stored as it completes: ``(level, index)``
  covers leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes.
  Any root, inclusion proof or consistency proof for any tree size is computed from O(log n) rows.
- ``audit_state``: one row (``id`` 1): the tree size and its compact "frontier" (the roots of the
  complete subtrees that make up the current tree, largest first). Appending takes the row lock
  (``UPDATE ... RETURNING``), so concurrent writers in separate processes serialise on it.
- ``audit_checkpoints``: signed tree heads (C2SP signed-note text), one per signed tree size.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from synthguard.store.models import ACTOR_LENGTH, Base

__all__ = [
    "EVENT_LENGTH",
    "SUBJECT_LENGTH",
    "AuditCheckpointRow",
    "AuditNodeRow",
    "AuditRecordRow",
    "AuditStateRow",
    "Base",
]

#: Longest dotted event name.
EVENT_LENGTH: Final = 64
#: Longest record reference (``complaint:SG-2026-000123``).
SUBJECT_LENGTH: Final = 200
#: Length of a SHA-256 digest.
HASH_LENGTH: Final = 32


class AuditRecordRow(Base):
    """One record of the log; its leaf is the canonical JSON of these columns (``audit.tree``)."""

    __tablename__ = "audit_records"
    __table_args__ = (
        sa.CheckConstraint("idx >= 0", name="idx"),
        sa.Index("ix_audit_records_subject", "subject"),
        sa.Index("ix_audit_records_event", "event"),
    )

    #: 0-based index in the log (the leaf index).
    idx: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[dt.datetime]
    event: Mapped[str] = mapped_column(sa.String(EVENT_LENGTH))
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    subject: Mapped[str] = mapped_column(sa.String(SUBJECT_LENGTH))
    #: Canonical JSON (sorted keys, no spaces, UTF-8) of the record's data, as hashed.
    data: Mapped[str] = mapped_column(sa.Text)


class AuditNodeRow(Base):
    """The hash of one complete subtree: ``level`` 0 is a leaf hash."""

    __tablename__ = "audit_nodes"
    __table_args__ = (
        sa.PrimaryKeyConstraint("level", "idx"),
        sa.CheckConstraint("level >= 0 AND level < 64", name="level"),
    )

    level: Mapped[int] = mapped_column(sa.SmallInteger, autoincrement=False)
    idx: Mapped[int] = mapped_column(sa.BigInteger, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(HASH_LENGTH))


class AuditStateRow(Base):
    """The one row (``id`` 1) with the tree size and its frontier; writers lock it to append."""

    __tablename__ = "audit_state"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    #: Concatenated 32-byte roots of the complete subtrees of the tree, largest first.
    frontier: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[dt.datetime | None]


class AuditCheckpointRow(Base):
    """A signed tree head: the note text (origin, size, root) and its Ed25519 signature line."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (sa.CheckConstraint("size >= 0", name="size"),)

    #: The tree size the checkpoint commits to (one checkpoint per size).
    size: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(HASH_LENGTH))
    origin: Mapped[str] = mapped_column(sa.String(200))
    #: The whole signed note (body, blank line, signature lines), as handed to an inspector.
    note: Mapped[str] = mapped_column(sa.Text)
    #: The C2SP key name and 4-byte key hash of the signing key, hex.
    key_name: Mapped[str] = mapped_column(sa.String(200))
    key_id: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
