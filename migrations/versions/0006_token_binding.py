"""tokens bound to a repository; installations' account and repository ids; used OIDC tokens

A job token reaches its job's repository only (`api_tokens.repo`). Existing job tokens
get the repository of their job's record (`wowdomain/<job>` in their installation) when
exactly one repository has it; the others stay without one and are refused from now on.
Installations keep the ids GitHub gives their account and repositories
(`account_id`, `repo_ids`): rows recorded before have none, and learn them from the
first exchange that names their repository (bot/api/coe_token.py). `oidc_exchanges`
remembers each OIDC token traded for a job token until it expires.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
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
    op.add_column("installations", sa.Column("account_id", sa.BigInteger(), nullable=True))
    op.add_column("installations", sa.Column("repo_ids", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        "oidc_exchanges",
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("job_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_oidc_exchanges_expires_at", "oidc_exchanges", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_oidc_exchanges_expires_at", table_name="oidc_exchanges")
    op.drop_table("oidc_exchanges")
    with op.batch_alter_table("installations") as batch:
        batch.drop_column("repo_ids")
        batch.drop_column("account_id")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("repo")
