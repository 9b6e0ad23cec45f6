"""Declarative models of the governance records (tables made only by the migrations in ``store/migrations``).

Every table is prefixed ``gov_``. Identity numbers, names and phone numbers are never stored in the
clear: a column ``*_cipher`` holds AES-GCM ciphertext (``governance.crypto``), ``lookup_hash`` a keyed
HMAC-SHA256 for lookup and uniqueness, ``masked`` the only form ever shown. Purging personal data
(``governance.retention``) nulls those columns and sets ``purged_at``; rows are kept so that counts and
the audit log's references stay meaningful.

- ``gov_subjects``: one row per end user of the AI service (a person or an organisation), keyed by the
  provider's own user reference ``user_ref``; its identity state (Art. 9).
- ``gov_identifiers``: a resident ID number, unified social credit code or mobile number bound to a
  subject. ``(id_type, lookup_hash)`` is unique: one number belongs to one user.
- ``gov_sms_challenges``: SMS codes sent to a mobile number (the code only as a keyed hash).
- ``gov_identity_overrides``: a staff request to set an identity state by hand, and a second staff
  member's decision.
- ``gov_consents``: the separate consent of a person whose face, voice or other biometrics are edited
  (Art. 14), with the digest of its evidence.
- ``gov_documents`` and ``gov_acceptances``: versioned agreements, rules and policies (Art. 7, 8;
  Measures Art. 9) and which user accepted which version, when.
- ``gov_assessments`` and ``gov_assessment_evidence``: security assessments (Art. 15, 20).
- ``gov_generations``: one row per generated content (its ProduceID, which the watermark carries), so
  that a detected watermark leads back to the user; rows without an explicit label are the Measures
  Art. 9 log.

Columns hold the stable string values of the Enums of the service modules; CHECK constraints keep the
closed vocabularies closed in the database as well.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from synthguard.store.models import ACTOR_LENGTH, Base

__all__ = [
    "USER_REF_LENGTH",
    "AcceptanceRow",
    "AssessmentEvidenceRow",
    "AssessmentRow",
    "Base",
    "ConsentRow",
    "DocumentRow",
    "GenerationRow",
    "IdentifierRow",
    "IdentityOverrideRow",
    "SmsChallengeRow",
    "SubjectRow",
]

#: Longest user reference of the provider's own user system.
USER_REF_LENGTH: Final = 128
#: Length of a SHA-256 / HMAC-SHA256 digest in hex.
DIGEST_LENGTH: Final = 64

# An autoincrementing 64-bit key; SQLite only autoincrements a column declared INTEGER.
_BIG_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class SubjectRow(Base):
    """An end user of the AI service and its real-name state (``identity.IdentityState``)."""

    __tablename__ = "gov_subjects"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('person', 'organisation')", name="kind"),
        sa.CheckConstraint("state IN ('unverified', 'pending', 'verified', 'rejected')", name="state"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    user_ref: Mapped[str] = mapped_column(sa.String(USER_REF_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    #: Why the state is what it is (a verifier's answer, an override's reason); no personal data.
    state_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: How the subject was verified: ``sms``, ``verifier:<name>``, ``manual:<override id>``.
    verified_method: Mapped[str | None] = mapped_column(sa.String(80))
    verified_at: Mapped[dt.datetime | None]
    #: The real name (person) or registered name (organisation), encrypted; NULL when not given or purged.
    name_cipher: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    name_masked: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    #: When the account was closed (the identity retention clock starts here).
    closed_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    #: When the personal data of this subject was erased (retention ended).
    purged_at: Mapped[dt.datetime | None]


class IdentifierRow(Base):
    """One identity number bound to a subject: encrypted, keyed-hashed and masked."""

    __tablename__ = "gov_identifiers"
    __table_args__ = (
        sa.CheckConstraint("id_type IN ('resident_id', 'uscc', 'mobile')", name="id_type"),
        sa.UniqueConstraint("id_type", "lookup_hash"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("gov_subjects.id"), index=True)
    id_type: Mapped[str] = mapped_column(sa.String(16))
    #: AES-GCM ciphertext of the normalised number; NULL once purged.
    cipher: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    #: HMAC-SHA256 of the normalised number; NULL once purged or released (rejected by a verifier).
    lookup_hash: Mapped[str | None] = mapped_column(sa.String(DIGEST_LENGTH))
    masked: Mapped[str] = mapped_column(sa.String(32))
    #: False for a number accepted by a reviewed manual override although its checksum failed.
    checksum_ok: Mapped[bool]
    verified_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    purged_at: Mapped[dt.datetime | None]


class SmsChallengeRow(Base):
    """An SMS code sent to a mobile number; the code itself only as a keyed hash."""

    __tablename__ = "gov_sms_challenges"

    #: A random public identifier the client echoes when it confirms the code.
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("gov_subjects.id"), index=True)
    phone_hash: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH), index=True)
    phone_cipher: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    phone_masked: Mapped[str] = mapped_column(sa.String(32))
    code_hash: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int]
    consumed_at: Mapped[dt.datetime | None]


class IdentityOverrideRow(Base):
    """A reviewed manual override of an identity state: requested by one staff member, decided by another."""

    __tablename__ = "gov_identity_overrides"
    __table_args__ = (
        sa.CheckConstraint("target_state IN ('verified', 'rejected')", name="target_state"),
        sa.CheckConstraint("decision IS NULL OR decision IN ('approved', 'denied')", name="decision"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("gov_subjects.id"), index=True)
    target_state: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text)
    #: A number the override vouches for although its checksum failed (bound when approved).
    identifier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gov_identifiers.id"))
    requested_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    requested_at: Mapped[dt.datetime]
    decision: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    decided_by: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    decided_at: Mapped[dt.datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)


class ConsentRow(Base):
    """The separate consent of a person to the editing of one biometric for one purpose (Art. 14)."""

    __tablename__ = "gov_consents"
    __table_args__ = (
        sa.CheckConstraint(
            "biometric IN ('face', 'voice', 'gait', 'fingerprint', 'iris', 'body')", name="biometric"
        ),
        sa.CheckConstraint("evidence_size >= 0", name="evidence_size"),
        sa.Index("ix_gov_consents_subject_ref_biometric", "subject_ref", "biometric"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    #: The person edited (the provider's reference; NULL once purged).
    subject_ref: Mapped[str | None] = mapped_column(sa.String(USER_REF_LENGTH))
    biometric: Mapped[str] = mapped_column(sa.String(16))
    #: A short purpose code, matched exactly (case-folded) by the check.
    purpose: Mapped[str] = mapped_column(sa.String(128))
    purpose_detail: Mapped[str] = mapped_column(sa.Text)
    #: The user of the service who asked for the edit, when known.
    requested_by_user_ref: Mapped[str | None] = mapped_column(sa.String(USER_REF_LENGTH))
    evidence_sha256: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    evidence_size: Mapped[int] = mapped_column(sa.BigInteger)
    evidence_type: Mapped[str] = mapped_column(sa.String(128))
    granted_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)
    recorded_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    created_at: Mapped[dt.datetime]
    purged_at: Mapped[dt.datetime | None]


class DocumentRow(Base):
    """One published version of an agreement, rule set or policy; never edited once published."""

    __tablename__ = "gov_documents"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('user_agreement', 'platform_rules', 'unlabeled_output_agreement', 'privacy_policy')",
            name="kind",
        ),
        sa.UniqueConstraint("kind", "version"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    version: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    #: SHA-256 of the UTF-8 body: what a user accepted, provably.
    sha256: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    effective_from: Mapped[dt.datetime]
    published_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    published_at: Mapped[dt.datetime]


class AcceptanceRow(Base):
    """A user's acceptance of one document version."""

    __tablename__ = "gov_acceptances"
    __table_args__ = (sa.UniqueConstraint("user_ref", "document_id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    user_ref: Mapped[str] = mapped_column(sa.String(USER_REF_LENGTH), index=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("gov_documents.id"), index=True)
    accepted_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))


class AssessmentRow(Base):
    """A security assessment (Art. 15, 20) of a function, with its conclusion."""

    __tablename__ = "gov_assessments"
    __table_args__ = (
        sa.CheckConstraint(
            "scope IN ('biometric_editing', 'sensitive_content', 'public_opinion', 'new_function', 'other')",
            name="scope",
        ),
        sa.CheckConstraint("conclusion IN ('passed', 'passed_with_conditions', 'failed')", name="conclusion"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    scope: Mapped[str] = mapped_column(sa.String(32))
    function_name: Mapped[str] = mapped_column(sa.String(200))
    assessor: Mapped[str] = mapped_column(sa.String(200))
    conclusion: Mapped[str] = mapped_column(sa.String(32))
    summary: Mapped[str] = mapped_column(sa.Text)
    assessed_at: Mapped[dt.datetime] = mapped_column(index=True)
    recorded_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    created_at: Mapped[dt.datetime]


class AssessmentEvidenceRow(Base):
    """One piece of evidence of an assessment, by digest (the file itself is kept elsewhere)."""

    __tablename__ = "gov_assessment_evidence"
    __table_args__ = (sa.CheckConstraint("size >= 0", name="size"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    assessment_id: Mapped[int] = mapped_column(sa.ForeignKey("gov_assessments.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    sha256: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    media_type: Mapped[str] = mapped_column(sa.String(128))


class GenerationRow(Base):
    """One generated content, keyed by the ProduceID its watermark and metadata carry."""

    __tablename__ = "gov_generations"
    __table_args__ = (
        sa.CheckConstraint("modality IN ('text', 'image', 'audio', 'video')", name="modality"),
        sa.Index("ix_gov_generations_explicit_label_created_at", "explicit_label", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    produce_id: Mapped[str] = mapped_column(sa.String(16), unique=True)
    #: The user it was generated for; NULL once purged.
    user_ref: Mapped[str | None] = mapped_column(sa.String(USER_REF_LENGTH), index=True)
    modality: Mapped[str] = mapped_column(sa.String(16))
    content_digest: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH), index=True)
    #: The label kinds applied (``LabelKind`` values), sorted.
    labels: Mapped[list[str]] = mapped_column(sa.JSON)
    #: False when the content went out without an explicit (visible) label (Measures Art. 9 log).
    explicit_label: Mapped[bool]
    unlabeled_agreement_version: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    purged_at: Mapped[dt.datetime | None]
