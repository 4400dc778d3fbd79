"""Context API: tokens, snapshots and their items, restore links; search indexes

Full-text search on a context's summary uses an expression GIN index on PostgreSQL
(`to_tsvector('english', summary)`, the expression agents/context/search.py queries
with); SQLite searches with LIKE and gets no such index.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_tokens_installation_id", "api_tokens", ["installation_id"], unique=False)

    op.create_table(
        "context_snapshots",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repo", sa.String(length=256), nullable=False),
        sa.Column("scope_prefix", sa.String(length=256), nullable=False),
        sa.Column("contexts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_context_snapshots_installation_id", "context_snapshots", ["installation_id"], unique=False)

    op.create_table(
        "context_snapshot_items",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("snapshot_id", BigId, nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_source_id", sa.BigInteger(), nullable=True),
        sa.Column("head", sa.Boolean(), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("delivery_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restored_from_snapshot", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["snapshot_id"], ["context_snapshots.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("snapshot_id", "source_id", name="uq_snapshot_item_source"),
    )
    op.create_index("ix_context_snapshot_items_snapshot_id", "context_snapshot_items", ["snapshot_id"], unique=False)

    op.create_table(
        "context_restores",
        sa.Column("version_id", BigId, autoincrement=False, nullable=False),
        sa.Column("snapshot_id", BigId, nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["context_versions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["snapshot_id"], ["context_snapshots.id"]),
        sa.PrimaryKeyConstraint("version_id"),
    )

    op.create_index("ix_context_versions_installation_id", "context_versions", ["installation_id", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_context_versions_summary_fts ON context_versions "
            "USING gin (to_tsvector('english'::regconfig, summary))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_context_versions_summary_fts")
    op.drop_index("ix_context_versions_installation_id", table_name="context_versions")
    op.drop_table("context_restores")
    op.drop_index("ix_context_snapshot_items_snapshot_id", table_name="context_snapshot_items")
    op.drop_table("context_snapshot_items")
    op.drop_index("ix_context_snapshots_installation_id", table_name="context_snapshots")
    op.drop_table("context_snapshots")
    op.drop_index("ix_api_tokens_installation_id", table_name="api_tokens")
    op.drop_table("api_tokens")
