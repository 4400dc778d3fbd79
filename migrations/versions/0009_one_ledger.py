"""one ledger for every model call: CoE jobs' spend moves into the decisions table

The ledger gains what a job's rows need: `status` (settled, skipped, error — until now only
in `outcome`), `model_calls`, `installation_id` and `idempotency_key`, unique per job
(its repository and installation), so a job's row written twice is recorded once.

Existing rows: their status comes from their outcome; an LLM row's model calls from its
outcome's attempts, else 1 when it cost something; their installation from the delivery
that led to them while the inbox still holds it.

CoE jobs recorded their spend only inside their contexts, where the daily report read it.
Each committed step (the first version of a `<job>:<step>` context with a `spend`) becomes
a settled LLM row of its job, dated when it was committed and keyed by its step, as the
runner writes it; each rise of a job record's `wasted_usd` becomes an error row of the
job, dated at that version. So the reports of past days keep their figures, and a job
resumed after the upgrade, which writes its committed steps' rows again, counts none twice.

Downgrading deletes the rows of jobs: the code before reads their spend from the
contexts again, which still hold it.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 500
KEY = ["job_id", "repo", "installation_id", "idempotency_key"]

decisions = sa.table(
    "decisions",
    *(
        sa.column(name)
        for name in (
            "id",
            "agent",
            "rule",
            "rung",
            "status",
            "input_hash",
            "latency_ms",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "model_calls",
            "repo",
            "delivery_id",
            "job_id",
            "installation_id",
            "idempotency_key",
        )
    ),
    sa.column("outcome", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
versions = sa.table(
    "context_versions",
    *(sa.column(name) for name in ("id", "installation_id", "repo", "agent", "scope", "version")),
    sa.column("data", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)

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
        decisions.update()
        .where(decisions.c.rung == "llm")
        .values(model_calls=sa.func.coalesce(attempts, sa.case((decisions.c.cost_usd > 0, 1), else_=0)))
    )
    op.execute(FROM_INBOX)
    bind = op.get_bind()
    for rows in _chunks(_steps(bind)):
        bind.execute(decisions.insert(), rows)
    for rows in _chunks(_waste(bind)):
        bind.execute(decisions.insert(), rows)
    op.create_index("uq_decisions_job_key", "decisions", KEY, unique=True)


def downgrade() -> None:
    op.drop_index("uq_decisions_job_key", table_name="decisions")
    op.execute(decisions.delete().where(decisions.c.job_id.isnot(None)))
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("idempotency_key")
        batch.drop_column("installation_id")
        batch.drop_column("model_calls")
        batch.drop_column("status")
        batch.create_index("ix_decisions_job", ["job_id"], unique=False)


def _steps(bind: sa.Connection) -> Iterator[dict[str, Any]]:
    """A row for each committed step: the first version of a `<job>:<step>` context that says what it spent."""
    data = versions.c.data
    found = bind.execute(
        sa.select(
            versions.c.installation_id,
            versions.c.repo,
            versions.c.agent,
            versions.c.scope,
            versions.c.created_at,
            data["step"].as_string(),
            data["input_hash"].as_string(),
            data["spend"],
        )
        .where(versions.c.scope.like("job-%:%"), versions.c.version == 1)
        .order_by(versions.c.id)
    ).all()
    for installation, repo, agent, scope, created_at, step, digest, spend in found:
        if not step or not isinstance(spend, dict):
            continue
        yield {
            "agent": agent,
            "rule": step[:128],
            "rung": "llm",
            "status": "settled",
            "input_hash": digest or None,
            "outcome": {"status": "settled", "model": spend.get("model"), "batch": bool(spend.get("batch"))},
            "latency_ms": float(spend.get("latency_ms") or 0.0),
            "tokens_in": int(spend.get("tokens_in") or 0),
            "tokens_out": int(spend.get("tokens_out") or 0),
            "cost_usd": float(spend.get("cost_usd") or 0.0),
            "model_calls": int(spend.get("model_calls") or 0),
            "repo": repo,
            "delivery_id": None,
            "job_id": scope.partition(":")[0],
            "installation_id": installation,
            "idempotency_key": step[:128],
            "created_at": created_at,
        }


def _waste(bind: sa.Connection) -> Iterator[dict[str, Any]]:
    """A row for each rise of a job record's `wasted_usd` (spent on answers no step could use)."""
    found = bind.execute(
        sa.select(
            versions.c.installation_id,
            versions.c.repo,
            versions.c.scope,
            versions.c.version,
            versions.c.created_at,
            versions.c.data["wasted_usd"].as_float(),
        )
        .where(versions.c.agent == "wowdomain", versions.c.scope.like("job-%"), ~versions.c.scope.like("%:%"))
        .order_by(versions.c.installation_id, versions.c.repo, versions.c.scope, versions.c.version)
    ).all()
    job, highest = None, 0.0
    for installation, repo, scope, version, created_at, wasted in found:
        if job != (installation, repo, scope):
            job, highest = (installation, repo, scope), 0.0
        if wasted is not None and wasted > highest:
            yield {
                "agent": "wowdomain",
                "rule": "wasted",
                "rung": "llm",
                "status": "error",
                "input_hash": None,
                "outcome": {"status": "error", "reason": "unusable", "job_version": version},
                "latency_ms": 0.0,
                "tokens_in": 0,
                "tokens_out": 0,
                "cost_usd": wasted - highest,
                "model_calls": 0,
                "repo": repo,
                "delivery_id": None,
                "job_id": scope,
                "installation_id": installation,
                "idempotency_key": f"wasted@v{version}",
                "created_at": created_at,
            }
            highest = wasted


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
