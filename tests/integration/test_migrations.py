"""The migrations build exactly the tables the models describe, on both databases, in one line of history."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select

from agents.context.db import MIGRATIONS_DIR
from agents.context.models import ApiToken, Base, ContextVersion


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


def test_job_tokens_made_before_0006_are_bound_to_their_jobs_repository(store):
    """A job token made before tokens named a repository gets its job's (from the job's record, in
    its installation) when one repository has it; the others get none, and are refused from then on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, ScriptDirectory.from_config(config).get_revision("0006").down_revision)
    records = [(1, "octo/hello", "job-1"), (2, "octo/elsewhere", "job-1"), (1, "octo/a", "job-2"), (1, "octo/b", "job-2")]
    now = datetime.now(timezone.utc)
    tokens = {"t-job-1": "job-1", "t-job-2": "job-2", "t-unknown": "job-3", "t-installation": None}
    with store.session() as session:
        session.add_all(ContextVersion(installation_id=installation, repo=repo, agent="wowdomain", scope=job, version=1,
                                       data={}) for installation, repo, job in records)  # fmt: skip
        session.execute(insert(ApiToken.__table__), [  # the columns api_tokens had before 0006
            {"id": ident, "secret_hash": "0" * 64, "installation_id": 1, "job_id": job, "read_only": False,
             "created_at": now, "expires_at": now}
            for ident, job in tokens.items()
        ])  # fmt: skip
    store.upgrade()
    with store.reading() as session:
        bound = {ident: repo for ident, repo in session.execute(select(ApiToken.id, ApiToken.repo))}
    assert bound == {"t-job-1": "octo/hello", "t-job-2": None, "t-unknown": None, "t-installation": None}
