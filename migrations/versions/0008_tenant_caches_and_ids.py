"""decision cache entries belong to an installation; context version ids are never reused on SQLite

`decision_cache.installation_id`: whose verdict an entry is (NULL: the shared cache of
public inputs, which an operator opts into), so that it is deleted with its installation.
The key itself hashes the installation in as well, so the entries written before (with
no installation in their key) can never be read again: they are deleted, not carried.

`context_versions` on SQLite becomes AUTOINCREMENT. Without it SQLite gives a new row
the id of a deleted one, and snapshots, restores and handoffs remember ids of rows that
may be gone (a job's rows deleted, then restored, then snapshotted again copied one id
twice). The sequence starts past every id anything remembers, not only past the live
rows. PostgreSQL never reuses an id: nothing to do there.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Every column that keeps the id of a context_versions row, live or gone.
_REMEMBERED_IDS = (
    ("context_versions", "id"),
    ("context_snapshot_items", "source_id"),
    ("context_snapshot_items", "parent_source_id"),
    ("context_restores", "source_id"),
    ("context_restores", "version_id"),
    ("handoffs", "context_version_id"),
)


def upgrade() -> None:
    op.execute("DELETE FROM decision_cache")
    with op.batch_alter_table("decision_cache") as batch:
        batch.add_column(sa.Column("installation_id", sa.BigInteger(), nullable=True))
        batch.create_index("ix_decision_cache_installation_id", ["installation_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement(True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement(False)
    with op.batch_alter_table("decision_cache") as batch:
        batch.drop_index("ix_decision_cache_installation_id")
        batch.drop_column("installation_id")


def _sqlite_autoincrement(on: bool) -> None:
    # The table is rebuilt (SQLite cannot alter it in place); Store.upgrade runs migrations
    # with foreign keys off, so dropping the old table cascades to nothing.
    with op.batch_alter_table("context_versions", recreate="always", table_kwargs={"sqlite_autoincrement": on}):
        pass
    if on:
        highest = " UNION ALL ".join(f"SELECT MAX({column}) AS id FROM {table}" for table, column in _REMEMBERED_IDS)
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'context_versions'")
        op.execute(
            "INSERT INTO sqlite_sequence (name, seq) "
            f"SELECT 'context_versions', MAX(id) FROM ({highest}) HAVING MAX(id) IS NOT NULL"
        )
