"""The migrations build exactly the tables the models describe, on both databases, in one line of history."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from agents.context.db import MIGRATIONS_DIR
from agents.context.models import Base


def test_the_history_is_one_line():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migrated_schema_matches_the_models(store):
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # Expression indexes (full-text search on PostgreSQL) are not in the models' metadata.
    differences = [d for d in differences if not (d[0] == "remove_index" and d[1].name.endswith("_fts"))]
    assert differences == []
