"""task_assignments: a CoE coordinator's tasks, each with its one Responsible agent

The unique key (installation, repository, CoE, task key) is the lock that makes two coordinators
or two workers racing on one task assign it once; the deadline is what the escalation sweep reads.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repo", sa.String(length=256), nullable=False),
        sa.Column("coe", sa.String(length=64), nullable=False),
        sa.Column("task_key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("responsible", sa.String(length=128), nullable=False),
        sa.Column("accountable", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=True),
        sa.Column("pull_number", sa.Integer(), nullable=True),
        sa.Column("release", sa.String(length=128), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_task_assignments_key", "task_assignments", ["installation_id", "repo", "coe", "task_key"], unique=True
    )
    op.create_index("ix_task_assignments_load", "task_assignments", ["installation_id", "repo", "responsible", "state"])
    op.create_index("ix_task_assignments_deadline", "task_assignments", ["state", "deadline"])
    op.create_index("ix_task_assignments_correlation_id", "task_assignments", ["correlation_id"])


def downgrade() -> None:
    op.drop_index("ix_task_assignments_correlation_id", table_name="task_assignments")
    op.drop_index("ix_task_assignments_deadline", table_name="task_assignments")
    op.drop_index("ix_task_assignments_load", table_name="task_assignments")
    op.drop_index("uq_task_assignments_key", table_name="task_assignments")
    op.drop_table("task_assignments")
