"""tokens bound to a repository

A job token reaches its job's repository only (`api_tokens.repo`). Existing job tokens
get the repository of their job's record (`wowdomain/<job>` in their installation) when
exactly one repository has it; the others stay without one and are refused from now on.

Revision ID: 0006
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

# A job's record is the WowDomain context named after the job (agents/domain/job.py).
JOB_TOKENS_TO_THEIR_REPOSITORY = """
    UPDATE api_tokens SET repo = (
        SELECT MIN(versions.repo) FROM context_versions AS versions
        WHERE versions.installation_id = api_tokens.installation_id
          AND versions.agent = 'wowdomain' AND versions.scope = api_tokens.job_id
        HAVING COUNT(DISTINCT versions.repo) = 1
    )
    WHERE job_id IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("repo", sa.String(length=256), nullable=True))
    op.execute(JOB_TOKENS_TO_THEIR_REPOSITORY)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("repo")
