"""inbox bodies compressed with lz4 on PostgreSQL

Webhook bodies are tens of KB of JSON, stored out of line (TOAST). PostgreSQL's
default pglz compression costs more CPU per delivery than the rest of intake; lz4
compresses nearly as well for a fraction of it. Only where the server has lz4.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.exec_driver_sql(HAS_LZ4).scalar():
        op.execute("ALTER TABLE inbox ALTER COLUMN body SET COMPRESSION lz4")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox ALTER COLUMN body SET COMPRESSION DEFAULT")
