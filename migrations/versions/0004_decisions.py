"""decision cache table (the cache rung without Redis); ledger indexes for budgets

Budgets read spend from the decision ledger: the sum of cost_usd per repository since
the start of the day, and per job.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_decision_cache_expires_at", "decision_cache", ["expires_at"], unique=False)
    op.create_index("ix_decisions_repo_created", "decisions", ["repo", "created_at"], unique=False)
    op.create_index("ix_decisions_job", "decisions", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_decisions_job", table_name="decisions")
    op.drop_index("ix_decisions_repo_created", table_name="decisions")
    op.drop_index("ix_decision_cache_expires_at", table_name="decision_cache")
    op.drop_table("decision_cache")
