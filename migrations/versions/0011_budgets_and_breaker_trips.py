"""budgets per installation and agent, and the LLM breaker's trips

An index on the ledger by installation and time, which the installation's and its agents'
daily and monthly budgets sum over; and the table `llm_breaker_trips`, one row each time
the (shared) circuit breaker of the LLM client opens, which the daily report counts.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_installation_created", "decisions", ["installation_id", "created_at"], unique=False)
    op.create_table(
        "llm_breaker_trips",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("cooldown_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_llm_breaker_trips_opened_at", "llm_breaker_trips", ["opened_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_llm_breaker_trips_opened_at", table_name="llm_breaker_trips")
    op.drop_table("llm_breaker_trips")
    op.drop_index("ix_decisions_installation_created", table_name="decisions")
