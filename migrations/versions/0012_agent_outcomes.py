"""agent_outcomes: the evidence agents' reputation is scored from

One row per outcome of an agent's output (a finding fixed or ignored, a review thread
resolved or not, a triage label kept or changed, a pull request merged or closed, a
reaction), unique per (installation, repository, agent, kind, subject); and an index on
published_outputs by repository and GitHub id, which an outcome is traced back by.

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
        "agent_outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repo", sa.String(length=256), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=True),
        sa.Column("url", sa.String(length=512), nullable=True),
        sa.Column("github_id", sa.BigInteger(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_agent_outcomes_subject",
        "agent_outcomes",
        ["installation_id", "repo", "agent", "kind", "subject"],
        unique=True,
    )
    op.create_index("ix_agent_outcomes_observed", "agent_outcomes", ["observed_at"], unique=False)
    op.create_index("ix_published_outputs_github_id", "published_outputs", ["repo", "github_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_published_outputs_github_id", table_name="published_outputs")
    op.drop_index("ix_agent_outcomes_observed", table_name="agent_outcomes")
    op.drop_index("uq_agent_outcomes_subject", table_name="agent_outcomes")
    op.drop_table("agent_outcomes")
