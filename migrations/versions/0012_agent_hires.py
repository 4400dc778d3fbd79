"""agent_hires: each agent's hired identity per installation and repository

Whether the repository's config hires the agent (`agents.enable` / `agents.disable` in
`.github/waooaw.yml`), its lifecycle state there when it differs from its state
everywhere (`agent_states`), and its budget there.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_hires",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repo", sa.String(length=256), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("hired", sa.Boolean(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_agent_hires_key", "agent_hires", ["installation_id", "repo", "agent"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_agent_hires_key", table_name="agent_hires")
    op.drop_table("agent_hires")
