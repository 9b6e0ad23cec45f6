"""The audit log: RFC 9162 Merkle tree records, complete-subtree nodes, state row, signed checkpoints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Frozen once released: states the schema as of revision 0002 and never imports the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        _time("recorded_at", nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_records")),
        sa.CheckConstraint("idx >= 0", name=op.f("ck_audit_records_idx")),
    )
    op.create_index(op.f("ix_audit_records_subject"), "audit_records", ["subject"])
    op.create_index(op.f("ix_audit_records_event"), "audit_records", ["event"])

    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_nodes")),
        sa.CheckConstraint("level >= 0 AND level < 64", name=op.f("ck_audit_nodes_level")),
    )

    state = op.create_table(
        "audit_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        _time("updated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_state")),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_state_single_row")),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "frontier": b"", "updated_at": None}])

    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(8), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_audit_checkpoints_size")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_state")
    op.drop_table("audit_nodes")
    op.drop_index(op.f("ix_audit_records_event"), table_name="audit_records")
    op.drop_index(op.f("ix_audit_records_subject"), table_name="audit_records")
    op.drop_table("audit_records")
