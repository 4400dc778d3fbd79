"""The migrations build exactly the tables the models describe, on both databases, in one line of history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from agents.context.db import MIGRATIONS_DIR, Store
from agents.context.models import NO_INSTALLATION, Base, PublishedOutput
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
    now = datetime.now(timezone.utc)
    with unmigrated.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO inbox (delivery_id, event, repo, installation_id, body, status, attempts, received_at) "
            "VALUES ('d-1', 'push', 'acme/widgets', 77, :body, 'done', 1, :now)"), {"body": b"{}", "now": now})
        for marker, delivery in (("<!-- waooaw:wowvision:issue:rule:x -->", "d-1"),
                                 ("<!-- waooaw:concierge:comment:help:40 -->", "gone-from-the-inbox")):
            connection.execute(text(
                "INSERT INTO published_outputs (marker, agent, kind, repo, github_id, url, content_hash, delivery_id, "
                "created_at, updated_at) VALUES (:marker, 'a', 'issue', 'acme/widgets', 1, 'https://github.com/x', "
                "'h', :delivery, :now, :now)"), {"marker": marker, "delivery": delivery, "now": now})
    migrate(unmigrated, "heads")
    with unmigrated.session() as session:
        rows = session.scalars(select(PublishedOutput).order_by(PublishedOutput.id)).all()
        assert [(r.installation_id, r.repo, r.marker, r.github_id) for r in rows] == [
            (77, "acme/widgets", "<!-- waooaw:wowvision:issue:rule:x -->", 1),
            (NO_INSTALLATION, "acme/widgets", "<!-- waooaw:concierge:comment:help:40 -->", 1),
        ]
        # The same marker in another repository, or under another installation, is another output.
        session.add_all([
            PublishedOutput(installation_id=78, marker=rows[0].marker, agent="a", kind="issue", repo="acme/widgets"),
            PublishedOutput(installation_id=77, marker=rows[0].marker, agent="a", kind="issue", repo="globex/app"),
        ])
