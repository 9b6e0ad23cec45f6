"""The tamper-evident audit log (RFC 9162 Merkle tree, signed checkpoints, proofs, verification, export).

Every governance change appends one record with ``record_event`` inside its own transaction::

    from synthguard.audit import record_event

    with store.session(write=True) as session:
        ...  # the change
        record_event(session, event="complaint.filed", actor="public",
                     subject="complaint:SG-2026-000123", data={"category": "rumor"})

Modules: ``merkle`` (RFC 9162 hashing and proofs, standard library only), ``notes`` (checkpoints as
C2SP signed notes), ``log`` (appending and reading; proofs from stored nodes), ``checkpoints``
(signing), ``verify`` (re-checking the whole log), ``bundle`` (export for inspectors) and
``inspector`` (the standalone bundle verifier). Records are never deleted by synthguard.
"""

from __future__ import annotations

from synthguard.audit.log import SETTINGS_INFO_KEY, record_event

__all__ = ["SETTINGS_INFO_KEY", "record_event"]
