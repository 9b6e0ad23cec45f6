"""Governance records: identity, SMS codes, overrides, consent, documents, assessments, generations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Frozen once released: states the schema as of revision 0003 and never imports the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", _BIG_ID, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "gov_subjects",
        _id(),
        sa.Column("user_ref", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("verified_method", sa.String(80), nullable=True),
        _time("verified_at", nullable=True),
        sa.Column("name_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("name_masked", sa.String(64), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("closed_at", nullable=True),
        _time("purged_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_subjects")),
        sa.UniqueConstraint("user_ref", name=op.f("uq_gov_subjects_user_ref")),
        sa.CheckConstraint("kind IN ('person', 'organisation')", name=op.f("ck_gov_subjects_kind")),
        sa.CheckConstraint(
            "state IN ('unverified', 'pending', 'verified', 'rejected')", name=op.f("ck_gov_subjects_state")
        ),
    )
    op.create_index(op.f("ix_gov_subjects_state"), "gov_subjects", ["state"])
    op.create_index(op.f("ix_gov_subjects_closed_at"), "gov_subjects", ["closed_at"])

    op.create_table(
        "gov_identifiers",
        _id(),
        sa.Column("subject_id", _BIG_ID, nullable=False),
        sa.Column("id_type", sa.String(16), nullable=False),
        sa.Column("cipher", sa.LargeBinary(), nullable=True),
        sa.Column("lookup_hash", sa.String(64), nullable=True),
        sa.Column("masked", sa.String(32), nullable=False),
        sa.Column("checksum_ok", sa.Boolean(), nullable=False),
        _time("verified_at", nullable=True),
        _time("created_at", nullable=False),
        _time("purged_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_identifiers")),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["gov_subjects.id"], name=op.f("fk_gov_identifiers_subject_id_gov_subjects")
        ),
        sa.UniqueConstraint("id_type", "lookup_hash", name=op.f("uq_gov_identifiers_id_type")),
        sa.CheckConstraint(
            "id_type IN ('resident_id', 'uscc', 'mobile')", name=op.f("ck_gov_identifiers_id_type")
        ),
    )
    op.create_index(op.f("ix_gov_identifiers_subject_id"), "gov_identifiers", ["subject_id"])

    op.create_table(
        "gov_sms_challenges",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("subject_id", _BIG_ID, nullable=False),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("phone_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(32), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _time("created_at", nullable=False),
        _time("expires_at", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("consumed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_sms_challenges")),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["gov_subjects.id"], name=op.f("fk_gov_sms_challenges_subject_id_gov_subjects")
        ),
    )
    op.create_index(op.f("ix_gov_sms_challenges_subject_id"), "gov_sms_challenges", ["subject_id"])
    op.create_index(op.f("ix_gov_sms_challenges_phone_hash"), "gov_sms_challenges", ["phone_hash"])
    op.create_index(op.f("ix_gov_sms_challenges_created_at"), "gov_sms_challenges", ["created_at"])

    op.create_table(
        "gov_identity_overrides",
        _id(),
        sa.Column("subject_id", _BIG_ID, nullable=False),
        sa.Column("target_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("identifier_id", _BIG_ID, nullable=True),
        sa.Column("requested_by", sa.String(128), nullable=False),
        _time("requested_at", nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        _time("decided_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_identity_overrides")),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["gov_subjects.id"],
            name=op.f("fk_gov_identity_overrides_subject_id_gov_subjects"),
        ),
        sa.ForeignKeyConstraint(
            ["identifier_id"],
            ["gov_identifiers.id"],
            name=op.f("fk_gov_identity_overrides_identifier_id_gov_identifiers"),
        ),
        sa.CheckConstraint(
            "target_state IN ('verified', 'rejected')", name=op.f("ck_gov_identity_overrides_target_state")
        ),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('approved', 'denied')",
            name=op.f("ck_gov_identity_overrides_decision"),
        ),
    )
    op.create_index(op.f("ix_gov_identity_overrides_subject_id"), "gov_identity_overrides", ["subject_id"])
    op.create_index(op.f("ix_gov_identity_overrides_decision"), "gov_identity_overrides", ["decision"])

    op.create_table(
        "gov_consents",
        _id(),
        sa.Column("subject_ref", sa.String(128), nullable=True),
        sa.Column("biometric", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(128), nullable=False),
        sa.Column("purpose_detail", sa.Text(), nullable=False),
        sa.Column("requested_by_user_ref", sa.String(128), nullable=True),
        sa.Column("evidence_sha256", sa.String(64), nullable=False),
        sa.Column("evidence_size", sa.BigInteger(), nullable=False),
        sa.Column("evidence_type", sa.String(128), nullable=False),
        _time("granted_at", nullable=False),
        _time("expires_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        _time("created_at", nullable=False),
        _time("purged_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_consents")),
        sa.CheckConstraint(
            "biometric IN ('face', 'voice', 'gait', 'fingerprint', 'iris', 'body')",
            name=op.f("ck_gov_consents_biometric"),
        ),
        sa.CheckConstraint("evidence_size >= 0", name=op.f("ck_gov_consents_evidence_size")),
    )
    op.create_index(
        op.f("ix_gov_consents_subject_ref_biometric"), "gov_consents", ["subject_ref", "biometric"]
    )

    op.create_table(
        "gov_documents",
        _id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _time("effective_from", nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        _time("published_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_documents")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_gov_documents_kind")),
        sa.CheckConstraint(
            "kind IN ('user_agreement', 'platform_rules', 'unlabeled_output_agreement', 'privacy_policy')",
            name=op.f("ck_gov_documents_kind"),
        ),
    )

    op.create_table(
        "gov_acceptances",
        _id(),
        sa.Column("user_ref", sa.String(128), nullable=False),
        sa.Column("document_id", _BIG_ID, nullable=False),
        _time("accepted_at", nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_acceptances")),
        sa.ForeignKeyConstraint(
            ["document_id"], ["gov_documents.id"], name=op.f("fk_gov_acceptances_document_id_gov_documents")
        ),
        sa.UniqueConstraint("user_ref", "document_id", name=op.f("uq_gov_acceptances_user_ref")),
    )
    op.create_index(op.f("ix_gov_acceptances_user_ref"), "gov_acceptances", ["user_ref"])
    op.create_index(op.f("ix_gov_acceptances_document_id"), "gov_acceptances", ["document_id"])

    op.create_table(
        "gov_assessments",
        _id(),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(200), nullable=False),
        sa.Column("assessor", sa.String(200), nullable=False),
        sa.Column("conclusion", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        _time("assessed_at", nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_assessments")),
        sa.CheckConstraint(
            "scope IN ('biometric_editing', 'sensitive_content', 'public_opinion', 'new_function', 'other')",
            name=op.f("ck_gov_assessments_scope"),
        ),
        sa.CheckConstraint(
            "conclusion IN ('passed', 'passed_with_conditions', 'failed')",
            name=op.f("ck_gov_assessments_conclusion"),
        ),
    )
    op.create_index(op.f("ix_gov_assessments_assessed_at"), "gov_assessments", ["assessed_at"])

    op.create_table(
        "gov_assessment_evidence",
        _id(),
        sa.Column("assessment_id", _BIG_ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_assessment_evidence")),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["gov_assessments.id"],
            name=op.f("fk_gov_assessment_evidence_assessment_id_gov_assessments"),
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_gov_assessment_evidence_size")),
    )
    op.create_index(
        op.f("ix_gov_assessment_evidence_assessment_id"), "gov_assessment_evidence", ["assessment_id"]
    )

    op.create_table(
        "gov_generations",
        _id(),
        sa.Column("produce_id", sa.String(16), nullable=False),
        sa.Column("user_ref", sa.String(128), nullable=True),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("explicit_label", sa.Boolean(), nullable=False),
        sa.Column("unlabeled_agreement_version", sa.String(32), nullable=True),
        _time("created_at", nullable=False),
        _time("purged_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gov_generations")),
        sa.UniqueConstraint("produce_id", name=op.f("uq_gov_generations_produce_id")),
        sa.CheckConstraint(
            "modality IN ('text', 'image', 'audio', 'video')", name=op.f("ck_gov_generations_modality")
        ),
    )
    op.create_index(op.f("ix_gov_generations_user_ref"), "gov_generations", ["user_ref"])
    op.create_index(op.f("ix_gov_generations_content_digest"), "gov_generations", ["content_digest"])
    op.create_index(op.f("ix_gov_generations_created_at"), "gov_generations", ["created_at"])
    op.create_index(
        op.f("ix_gov_generations_explicit_label_created_at"),
        "gov_generations",
        ["explicit_label", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("gov_generations")
    op.drop_table("gov_assessment_evidence")
    op.drop_table("gov_assessments")
    op.drop_table("gov_acceptances")
    op.drop_table("gov_documents")
    op.drop_table("gov_consents")
    op.drop_table("gov_identity_overrides")
    op.drop_table("gov_sms_challenges")
    op.drop_table("gov_identifiers")
    op.drop_table("gov_subjects")
