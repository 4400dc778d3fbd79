"""U+0000 out of stored contexts, snapshot copies and handoff packages

PostgreSQL keeps a \\u0000 escape in a json column but fails every query that reads that
document as text: a tag search over its rows, a daily report reading a job's data. The
Context API refuses U+0000 since this revision; what it stored before is rewritten here
with U+FFFD (the replacement character) in its place, so nothing else changes. Snapshot
copies are cleaned too, or a restore would write the character back.

Revision ID: 0007
Revises: 0006
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = {"context_versions": ("data", "tags"), "context_snapshot_items": ("data", "tags"), "handoffs": ("package",)}


def upgrade() -> None:
    bind = op.get_bind()
    for table, columns in COLUMNS.items():
        for column in columns:
            # The escape as JSON writes it ('!' escapes nothing here: PostgreSQL's LIKE would take the backslash)
            found = bind.execute(
                sa.text(f"SELECT id, {column} FROM {table} WHERE CAST({column} AS TEXT) LIKE '%\\u0000%' ESCAPE '!'")
            ).all()
            update = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id").bindparams(
                sa.bindparam("value", type_=sa.JSON())
            )
            for row_id, stored in found:
                value = json.loads(stored) if isinstance(stored, str) else stored  # SQLite hands back the text
                cleaned = _without_nul(value)
                if cleaned != value:  # not only a backslash followed by "u0000", as text
                    bind.execute(update, {"id": row_id, "value": cleaned})


def downgrade() -> None:
    pass  # the replaced characters are not put back: the store could not read them


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value
