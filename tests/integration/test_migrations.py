"""The migrations build exactly the tables the models describe, on both databases, in one line of history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, insert, select, text

from agents.context.models import ContextRestore, ContextVersion, Handoff
from agents.store.db import MIGRATIONS_DIR, Store
from agents.store.tables import NO_INSTALLATION, ApiToken, Base, PublishedOutput
from tests.conftest import postgres_schema_url


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


@pytest.fixture(params=["sqlite", "pg"])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty database on each backend, for a test to migrate step by step."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'waooaw.db'}")
        yield store
        store.dispose()
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    store = Store(postgres_schema_url(schema))
    yield store
    store.dispose()
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def migrate(store: Store, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_published_outputs_survive_being_keyed_by_installation(unmigrated):
    migrate(unmigrated, "0004")
    now = datetime.now(UTC)
    with unmigrated.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO inbox (delivery_id, event, repo, installation_id, body, status, attempts, received_at) "
                "VALUES ('d-1', 'push', 'acme/widgets', 77, :body, 'done', 1, :now)"
            ),
            {"body": b"{}", "now": now},
        )
        for marker, delivery in (
            ("<!-- waooaw:wowvision:issue:rule:x -->", "d-1"),
            ("<!-- waooaw:concierge:comment:help:40 -->", "gone-from-the-inbox"),
        ):
            connection.execute(
                text(
                    "INSERT INTO published_outputs (marker, agent, kind, repo, github_id, url, content_hash, "
                    "delivery_id, created_at, updated_at) "
                    "VALUES (:marker, 'a', 'issue', 'acme/widgets', 1, 'https://github.com/x', "
                    "'h', :delivery, :now, :now)"
                ),
                {"marker": marker, "delivery": delivery, "now": now},
            )
    unmigrated.upgrade()
    with unmigrated.session() as session:
        rows = session.scalars(select(PublishedOutput).order_by(PublishedOutput.id)).all()
        assert [(r.installation_id, r.repo, r.marker, r.github_id) for r in rows] == [
            (77, "acme/widgets", "<!-- waooaw:wowvision:issue:rule:x -->", 1),
            (NO_INSTALLATION, "acme/widgets", "<!-- waooaw:concierge:comment:help:40 -->", 1),
        ]
        # The same marker in another repository, or under another installation, is another output.
        session.add_all(
            [
                PublishedOutput(
                    installation_id=78, marker=rows[0].marker, agent="a", kind="issue", repo="acme/widgets"
                ),
                PublishedOutput(installation_id=77, marker=rows[0].marker, agent="a", kind="issue", repo="globex/app"),
            ]
        )


def test_on_sqlite_context_version_ids_are_never_handed_on_and_upgrading_keeps_every_row(tmp_path):
    """A database at 0004 whose snapshot remembers ids beyond the live rows: the upgrade keeps the
    rows that reference context_versions (a cascade would have deleted the restore links), and a
    new version gets an id nothing remembers."""
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(store, "0004")
    rows = {
        "context_versions": [
            {
                "id": n,
                "installation_id": 1,
                "repo": "o/r",
                "agent": "a",
                "scope": "job-1",
                "version": n,
                "parent_id": n - 1 or None,
                "data": "{}",
                "summary": "",
                "tags": "[]",
                "created_at": "2026-01-01",
            }
            for n in (1, 2, 3)
        ],
        "context_snapshots": [
            {
                "id": 1,
                "installation_id": 1,
                "repo": "o/r",
                "scope_prefix": "",
                "contexts": 1,
                "created_at": "2026-01-01",
            }
        ],
        # The snapshot copied versions 4 and 5, deleted since: their ids are remembered, not live.
        "context_snapshot_items": [
            {
                "snapshot_id": 1,
                "source_id": 5,
                "parent_source_id": 4,
                "head": True,
                "agent": "a",
                "scope": "job-1",
                "version": 5,
                "summary": "",
                "tags": "[]",
                "created_at": "2026-01-01",
            }
        ],
        "context_restores": [{"version_id": 3, "snapshot_id": 1, "source_id": 5, "source_version": 5}],
        "handoffs": [
            {
                "installation_id": 1,
                "repo": "o/r",
                "scope": "job-1",
                "from_agent": "a",
                "to_agent": "b",
                "context_version_id": 2,
                "package": "{}",
                "created_at": "2026-01-01",
            }
        ],
    }
    with store.engine.begin() as connection:
        for table, values in rows.items():
            columns = ", ".join(values[0])
            connection.execute(
                text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in values[0])})"), values
            )

    store.upgrade()

    with store.session() as session:
        assert [(v.id, v.parent_id) for v in session.scalars(select(ContextVersion).order_by(ContextVersion.id))] == [
            (1, None),
            (2, 1),
            (3, 2),
        ]
        assert [(r.version_id, r.source_id) for r in session.scalars(select(ContextRestore))] == [(3, 5)]
        assert [h.context_version_id for h in session.scalars(select(Handoff))] == [2]
        session.execute(delete(ContextVersion).where(ContextVersion.id == 3))  # the newest row goes
        new = ContextVersion(installation_id=1, repo="o/r", agent="a", scope="job-2", version=1, data={})
        session.add(new)
        session.flush()
        assert new.id == 6  # past the live rows, the deleted one and the ones the snapshot remembers
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_job_tokens_made_before_0006_are_bound_to_their_jobs_repository(unmigrated):
    """A job token made before tokens named a repository gets its job's (from the job's record, in
    its installation) when one repository has it; the others get none, and are refused from then on."""
    store = unmigrated
    migrate(store, "0005")
    records = [
        (1, "octo/hello", "job-1"),
        (2, "octo/elsewhere", "job-1"),
        (1, "octo/a", "job-2"),
        (1, "octo/b", "job-2"),
    ]
    now = datetime.now(UTC)
    tokens = {"t-job-1": "job-1", "t-job-2": "job-2", "t-unknown": "job-3", "t-installation": None}
    with store.session() as session:
        session.add_all(
            ContextVersion(installation_id=installation, repo=repo, agent="wowdomain", scope=job, version=1, data={})
            for installation, repo, job in records
        )
        session.execute(
            insert(ApiToken.__table__),
            [  # the columns api_tokens had before 0006
                {
                    "id": ident,
                    "secret_hash": "0" * 64,
                    "installation_id": 1,
                    "job_id": job,
                    "read_only": False,
                    "created_at": now,
                    "expires_at": now,
                }
                for ident, job in tokens.items()
            ],
        )
    store.upgrade()
    with store.reading() as session:
        bound = {ident: repo for ident, repo in session.execute(select(ApiToken.id, ApiToken.repo))}
    assert bound == {"t-job-1": "octo/hello", "t-job-2": None, "t-unknown": None, "t-installation": None}
