"""Shared fixtures: real payloads, and a store on SQLite and on the real PostgreSQL.

PostgreSQL and Redis are prerequisites of the suite, as on CI: when one cannot be
reached the tests that need it fail with a message saying how to start it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from agents.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = [ROOT / "tests" / "fixtures" / "webhooks", ROOT.parent / "shared" / "fixtures" / "webhooks"]
PG_URL = os.environ.get("WAOOAW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("WAOOAW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-webhook-secret"


def fixture_path(relative: str) -> Path:
    """A real GitHub payload: the repo's copy first, ../shared as a fallback."""
    for base in FIXTURES:
        if (base / relative).exists():
            return base / relative
    raise FileNotFoundError(f"no webhook fixture {relative} under {', '.join(map(str, FIXTURES))}")


def load_payload(relative: str, **overrides: Any) -> dict[str, Any]:
    payload = json.loads(fixture_path(relative).read_text())
    for dotted, value in overrides.items():
        target = payload
        *parents, leaf = dotted.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return payload


def postgres_schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the message says how to start it
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc.__class__.__name__}). Start it with:\n"
            "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            "or point WAOOAW_TEST_PG_URL at one.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture
def pg_store(postgres_admin: Any) -> Iterator[Store]:
    """A fresh schema in the real PostgreSQL, migrated, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    store = Store(postgres_schema_url(schema))
    store.upgrade()
    yield store
    store.dispose()
    with postgres_admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'waooaw.db'}")
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "pg"])
def store(request: pytest.FixtureRequest) -> Store:
    """The same test on both databases we support."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the message says how to start it
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc.__class__.__name__}). Start it with:\n"
            '  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
            "--dir /var/lib/redis --logfile /var/log/redis/ci.log\n"
            "or point WAOOAW_TEST_REDIS_URL at one.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def github_server() -> Iterator[Any]:
    """One fake GitHub REST server on loopback for the whole session (tests/fakes/github.py)."""
    from tests.fakes.github import FakeGitHub

    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def fresh_github(github_server: Any) -> Any:
    """The session's fake GitHub with nothing recorded, held or scripted by other tests."""
    github_server.reset()
    return github_server


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[Any]:
    """One fake Anthropic Messages API on loopback for the whole session (tests/fakes/anthropic.py)."""
    from tests.fakes.anthropic import FakeAnthropic

    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_anthropic(anthropic_server: Any) -> Any:
    """The session's fake Anthropic, with no requests, scripts or cached prefixes left from other tests."""
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture
def domain_script(fake_anthropic: Any) -> Any:
    """The fake Anthropic answering as the 13 WowDomain agents (tests/fakes/domain.py)."""
    from tests.fakes.domain import DomainScript

    fake_anthropic.responder = script = DomainScript()
    return script


# How many requests the schema fuzz (tests/integration/test_api_fuzz.py) made, per operation.
FUZZ_CASES = pytest.StashKey[Counter[str]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    cases = config.stash.get(FUZZ_CASES, None)
    if cases:
        terminalreporter.write_line(
            f"schema fuzz: {sum(cases.values())} cases over {len(cases)} operations of /openapi.json"
        )
