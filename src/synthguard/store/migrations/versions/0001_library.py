"""The characteristics database: entries, change log, snapshots, change counter, review hits.

Revision ID: 0001
Revises:
Create Date: 2025-11-28

Frozen: this file states the schema as of revision 0001 and never imports the models (which move on);
later changes are new revisions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "library_entries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("category", sa.String(8), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("match", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("proposer", sa.String(128), nullable=False),
        sa.Column("approver", sa.String(128), nullable=True),
        _time("approved_at", nullable=True),
        _time("effective_from", nullable=True),
        _time("lapses_at", nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("refutation_id", sa.String(64), nullable=True),
        sa.Column("refutation_title", sa.Text(), nullable=True),
        sa.Column("refutation_url", sa.Text(), nullable=True),
        sa.Column("refutation_published", sa.String(40), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_entries")),
        sa.CheckConstraint("kind IN ('keyword', 'image', 'rumor')", name=op.f("ck_library_entries_kind")),
        sa.CheckConstraint(
            "action IN ('block', 'review', 'mask', 'allow')", name=op.f("ck_library_entries_action")
        ),
        sa.CheckConstraint(
            "state IN ('proposed', 'approved', 'active', 'disabled', 'lapsed')",
            name=op.f("ck_library_entries_state"),
        ),
        sa.CheckConstraint(
            "quality IS NULL OR (quality >= 0 AND quality <= 100)", name=op.f("ck_library_entries_quality")
        ),
    )
    op.create_index(op.f("ix_library_entries_category"), "library_entries", ["category"])
    op.create_index(op.f("ix_library_entries_state"), "library_entries", ["state"])
    op.create_index(op.f("ix_library_entries_kind_state"), "library_entries", ["kind", "state"])

    op.create_table(
        "library_snapshots",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        _time("created_at", nullable=False),
        _time("as_of", nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("change_counter", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_snapshots")),
    )
    op.create_index(op.f("ix_library_snapshots_digest"), "library_snapshots", ["digest"])

    op.create_table(
        "library_changes",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _time("at", nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=True),
        sa.Column("snapshot_id", _BIG_ID, nullable=True),
        sa.Column("batch", sa.String(36), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_changes")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["library_entries.id"],
            name=op.f("fk_library_changes_entry_id_library_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["library_snapshots.id"],
            name=op.f("fk_library_changes_snapshot_id_library_snapshots"),
        ),
    )
    op.create_index(op.f("ix_library_changes_at"), "library_changes", ["at"])
    op.create_index(op.f("ix_library_changes_entry_id"), "library_changes", ["entry_id"])
    op.create_index(op.f("ix_library_changes_batch"), "library_changes", ["batch"])

    state = op.create_table(
        "library_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change_counter", sa.BigInteger(), nullable=False),
        _time("changed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_state")),
        sa.CheckConstraint("id = 1", name=op.f("ck_library_state_single_row")),
    )
    op.bulk_insert(state, [{"id": 1, "change_counter": 0, "changed_at": None}])

    op.create_table(
        "review_hits",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _time("at", nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(8), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("library_version", sa.String(80), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=True),
        sa.Column("end_offset", sa.Integer(), nullable=True),
        sa.Column("distance", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_hits")),
    )
    op.create_index(op.f("ix_review_hits_at"), "review_hits", ["at"])
    op.create_index(op.f("ix_review_hits_subject"), "review_hits", ["subject"])
    op.create_index(op.f("ix_review_hits_entry_id"), "review_hits", ["entry_id"])


def downgrade() -> None:
    op.drop_table("review_hits")
    op.drop_table("library_state")
    op.drop_table("library_changes")
    op.drop_table("library_snapshots")
    op.drop_table("library_entries")
