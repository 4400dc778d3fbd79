"""one ledger for every model call: the columns a job's rows need

The ledger gains `status` (settled, skipped, error — until now only in `outcome`),
`model_calls`, `installation_id` and `idempotency_key`, unique per job (its repository
and installation), so a job's row written twice is recorded once.

Existing rows: their status comes from their outcome; an LLM row's model calls from its
outcome's attempts, else 1 when it cost something; their installation from the delivery
that led to them while the inbox still holds it.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = ["job_id", "repo", "installation_id", "idempotency_key"]

decisions = sa.table(
    "decisions",
    *(sa.column(name) for name in ("id", "agent", "rule", "rung", "status", "input_hash", "latency_ms", "tokens_in",
                                   "tokens_out", "cost_usd", "model_calls", "repo", "delivery_id", "job_id",
                                   "installation_id", "idempotency_key")),
    sa.column("outcome", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip

FROM_INBOX = """
UPDATE decisions SET installation_id = (
    SELECT inbox.installation_id FROM inbox WHERE inbox.delivery_id = decisions.delivery_id
)
WHERE decisions.delivery_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM inbox WHERE inbox.delivery_id = decisions.delivery_id AND inbox.installation_id IS NOT NULL
)
"""


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="settled", nullable=False))
        batch.add_column(sa.Column("model_calls", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("installation_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch.drop_index("ix_decisions_job")
    status = decisions.c.outcome["status"].as_string()
    attempts = decisions.c.outcome["attempts"].as_integer()
    op.execute(decisions.update().where(status.in_(("skipped", "error"))).values(status=status))
    op.execute(
        decisions.update().where(decisions.c.rung == "llm")
        .values(model_calls=sa.func.coalesce(attempts, sa.case((decisions.c.cost_usd > 0, 1), else_=0)))
    )  # fmt: skip
    op.execute(FROM_INBOX)
    op.create_index("uq_decisions_job_key", "decisions", KEY, unique=True)


def downgrade() -> None:
    op.drop_index("uq_decisions_job_key", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("idempotency_key")
        batch.drop_column("installation_id")
        batch.drop_column("model_calls")
        batch.drop_column("status")
        batch.create_index("ix_decisions_job", ["job_id"], unique=False)
