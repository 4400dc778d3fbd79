"""agent_messages: what agents sent each other, with its lineage

One row per message an agent sent (agents/messages.py): its kind, sender, addressee,
conversation (correlation id), the delivery that caused it and the delivery that carries
it, unique per installation by key so that a rerun of the sending run sends nothing twice.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repo", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("addressee", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("causation", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("hops", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handoff_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    op.create_index("uq_agent_messages_key", "agent_messages", ["installation_id", "key"], unique=True)
    op.create_index("ix_agent_messages_correlation_id", "agent_messages", ["correlation_id"], unique=False)
    op.create_index("ix_agent_messages_created", "agent_messages", ["created_at"], unique=False)
    op.create_index("ix_agent_messages_repo_created", "agent_messages", ["repo", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_agent_messages_repo_created", table_name="agent_messages")
    op.drop_index("ix_agent_messages_created", table_name="agent_messages")
    op.drop_index("ix_agent_messages_correlation_id", table_name="agent_messages")
    op.drop_index("uq_agent_messages_key", table_name="agent_messages")
    op.drop_table("agent_messages")
