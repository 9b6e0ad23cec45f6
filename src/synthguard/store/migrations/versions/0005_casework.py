"""Casework: disposal strikes, measures and appeals; complaints; rumors; reports to the authorities.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

Frozen once released: states the schema as of revision 0005 and never imports the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _actor(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(128), nullable=nullable)


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{columns[0]}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "case_strikes",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_ref", sa.String(128), nullable=False),
        _time("at", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("risk", sa.String(8), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        _time("expires_at", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _actor("actor"),
        _time("voided_at", nullable=True),
        sa.Column("voided_reason", sa.Text(), nullable=True),
        _pk("case_strikes", "id"),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_case_strikes_weight")),
    )
    op.create_index("ix_case_strikes_user_at", "case_strikes", ["user_ref", "at"])

    op.create_table(
        "case_user_states",
        sa.Column("user_ref", sa.String(128), nullable=False),
        sa.Column("consecutive_violations", sa.Integer(), nullable=False),
        _time("updated_at", nullable=False),
        _pk("case_user_states", "user_ref"),
    )

    op.create_table(
        "case_measures",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_ref", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("functions", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("strike_ids", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        _actor("actor"),
        _time("imposed_at", nullable=False),
        _time("ends_at", nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("lifted_at", nullable=True),
        _actor("lifted_by", nullable=True),
        sa.Column("lifted_reason", sa.Text(), nullable=True),
        _pk("case_measures", "id"),
        sa.CheckConstraint(
            "kind IN ('warning', 'restriction', 'suspension', 'closure')", name=op.f("ck_case_measures_kind")
        ),
        sa.CheckConstraint("state IN ('active', 'lifted')", name=op.f("ck_case_measures_state")),
    )
    op.create_index("ix_case_measures_user_state", "case_measures", ["user_ref", "state"])

    op.create_table(
        "case_appeals",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("measure_id", _BIG_ID, nullable=False),
        _time("filed_at", nullable=False),
        _actor("filed_by"),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("decided_at", nullable=True),
        _actor("decided_by", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        _pk("case_appeals", "id"),
        sa.ForeignKeyConstraint(
            ["measure_id"], ["case_measures.id"], name=op.f("fk_case_appeals_measure_id_case_measures")
        ),
        sa.UniqueConstraint("measure_id", name=op.f("uq_case_appeals_measure_id")),
        sa.CheckConstraint(
            "state IN ('pending', 'upheld', 'overturned')", name=op.f("ck_case_appeals_state")
        ),
    )
    _index("case_appeals", "state")

    op.create_table(
        "case_complaints",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tracking_number", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(256), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("received_at", nullable=False),
        _time("acknowledge_due", nullable=False),
        _time("decide_due", nullable=False),
        _time("acknowledged_at", nullable=True),
        _time("review_started_at", nullable=True),
        _time("decided_at", nullable=True),
        _time("closed_at", nullable=True),
        _actor("assignee", nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=True),
        _time("updated_at", nullable=False),
        _pk("case_complaints", "id"),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_case_complaints_tracking_number")),
        sa.CheckConstraint(
            "category IN ('illegal_content', 'rumor', 'label_missing', 'infringement', "
            "'personal_information', 'other')",
            name=op.f("ck_case_complaints_category"),
        ),
        sa.CheckConstraint(
            "state IN ('received', 'acknowledged', 'in_review', 'decided', 'closed')",
            name=op.f("ck_case_complaints_state"),
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('upheld', 'rejected', 'referred')",
            name=op.f("ck_case_complaints_outcome"),
        ),
    )
    _index("case_complaints", "state")
    _index("case_complaints", "received_at")

    op.create_table(
        "case_complaint_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("complaint_id", _BIG_ID, nullable=False),
        _time("at", nullable=False),
        _actor("actor"),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("public_note", sa.Text(), nullable=True),
        _pk("case_complaint_events", "id"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["case_complaints.id"],
            name=op.f("fk_case_complaint_events_complaint_id_case_complaints"),
        ),
    )
    _index("case_complaint_events", "complaint_id")

    op.create_table(
        "case_attachments",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        _time("created_at", nullable=False),
        _pk("case_attachments", "digest"),
    )

    op.create_table(
        "case_complaint_attachments",
        sa.Column("complaint_id", _BIG_ID, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        _pk("case_complaint_attachments", "complaint_id", "digest"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["case_complaints.id"],
            name=op.f("fk_case_complaint_attachments_complaint_id_case_complaints"),
        ),
        sa.ForeignKeyConstraint(
            ["digest"],
            ["case_attachments.digest"],
            name=op.f("fk_case_complaint_attachments_digest_case_attachments"),
        ),
    )

    op.create_table(
        "case_rumors",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("risk", sa.String(8), nullable=False),
        sa.Column("refutation_title", sa.Text(), nullable=False),
        sa.Column("refutation_text", sa.Text(), nullable=False),
        sa.Column("refutation_source", sa.Text(), nullable=False),
        sa.Column("refutation_url", sa.Text(), nullable=False),
        _time("refuted_at", nullable=False),
        _time("created_at", nullable=False),
        _actor("actor"),
        _pk("case_rumors", "id"),
    )

    op.create_table(
        "case_rumor_entries",
        sa.Column("rumor_id", _BIG_ID, nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        _time("linked_at", nullable=False),
        _actor("actor"),
        _pk("case_rumor_entries", "rumor_id", "entry_id"),
        sa.ForeignKeyConstraint(
            ["rumor_id"], ["case_rumors.id"], name=op.f("fk_case_rumor_entries_rumor_id_case_rumors")
        ),
    )
    _index("case_rumor_entries", "entry_id")

    op.create_table(
        "case_rumor_occurrences",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("rumor_id", _BIG_ID, nullable=False),
        sa.Column("produce_id", sa.String(64), nullable=True),
        sa.Column("content_digest", sa.String(64), nullable=True),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("review_hit_id", sa.BigInteger(), nullable=True),
        _time("found_at", nullable=False),
        _actor("actor"),
        sa.Column("note", sa.Text(), nullable=False),
        _pk("case_rumor_occurrences", "id"),
        sa.ForeignKeyConstraint(
            ["rumor_id"], ["case_rumors.id"], name=op.f("fk_case_rumor_occurrences_rumor_id_case_rumors")
        ),
        sa.UniqueConstraint("rumor_id", "dedup_key", name="uq_case_rumor_occurrences_rumor_id"),
        sa.CheckConstraint(
            "produce_id IS NOT NULL OR content_digest IS NOT NULL OR review_hit_id IS NOT NULL",
            name=op.f("ck_case_rumor_occurrences_content"),
        ),
    )
    _index("case_rumor_occurrences", "rumor_id")
    _index("case_rumor_occurrences", "produce_id")
    _index("case_rumor_occurrences", "content_digest")

    op.create_table(
        "case_reports",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("authority", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("created_at", nullable=False),
        _actor("created_by"),
        _time("submitted_at", nullable=True),
        _actor("submitted_by", nullable=True),
        sa.Column("authority_ref", sa.Text(), nullable=True),
        sa.Column("submitted_content", sa.Text(), nullable=True),
        sa.Column("submitted_digest", sa.String(64), nullable=True),
        _pk("case_reports", "id"),
        sa.UniqueConstraint("number", name=op.f("uq_case_reports_number")),
        sa.CheckConstraint("state IN ('draft', 'submitted')", name=op.f("ck_case_reports_state")),
    )

    op.create_table(
        "case_report_items",
        sa.Column("report_id", _BIG_ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        _time("added_at", nullable=False),
        _pk("case_report_items", "report_id", "kind", "ref"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["case_reports.id"], name=op.f("fk_case_report_items_report_id_case_reports")
        ),
        sa.CheckConstraint(
            "kind IN ('measure', 'strike', 'complaint', 'rumor', 'review_hit')",
            name=op.f("ck_case_report_items_kind"),
        ),
    )

    op.create_table(
        "case_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        _pk("case_counters", "name"),
    )


def downgrade() -> None:
    for table in (
        "case_counters",
        "case_report_items",
        "case_reports",
        "case_rumor_occurrences",
        "case_rumor_entries",
        "case_rumors",
        "case_complaint_attachments",
        "case_attachments",
        "case_complaint_events",
        "case_complaints",
        "case_appeals",
        "case_measures",
        "case_user_states",
        "case_strikes",
    ):
        op.drop_table(table)
