"""`waooaw tokens create|revoke` and `waooaw context …` as a user runs them: on the store, and
through the API with nothing but WAOOAW_API_URL and a token (as a CoE job on a runner)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.context.client import DbContextClient
from agents.store.db import Store
from agents.store.tables import ApiToken
from agents.tokens import Grant, token_id
from tests.context_api_support import api_app, bearer, issue, live_server

ROOT = Path(__file__).resolve().parents[2]
WAOOAW = [sys.executable, "-m", "bot.cli"]
TOKEN = re.compile(r"wao_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # proves a command never touched a database


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    clean.update(env)
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout, whose .env may be a developer's
        return subprocess.run(WAOOAW + args, capture_output=True, text=True, env=clean, cwd=cwd, timeout=120)


@pytest.fixture
def db(tmp_path: Path) -> dict[str, str]:
    return {"WAOOAW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


@pytest.fixture
def cli_store(db):
    store = Store(db["WAOOAW_DATABASE_URL"])
    store.upgrade()
    yield store
    store.dispose()


def test_tokens_create_prints_the_token_alone_and_it_works(db, cli_store):
    created = run(["tokens", "create", "--installation", "42"], db)
    assert created.returncode == 0, created.stderr
    assert TOKEN.fullmatch(created.stdout.strip()) and created.stdout.count("\n") == 1
    token = created.stdout.strip()
    with TestClient(api_app(cli_store)) as client:
        url = "/api/v1/contexts/octo/hello/wowdomain/job-1"
        assert client.put(url, json={"data": {}}, headers=bearer(token)).status_code == 201
    with cli_store.reading() as session:
        row = session.get(ApiToken, token_id(token))
    expires = row.expires_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert row.installation_id == 42 and row.job_id is None and not row.read_only
    assert timedelta(minutes=58) < expires <= timedelta(hours=1)


def test_tokens_create_for_a_job_read_only_with_a_ttl(db, cli_store):
    DbContextClient(cli_store, Grant(42, actor="test")).put(
        "octo/hello", "wowdomain", "job-7", {}, expected_version=None
    )
    created = run(["tokens", "create", "--installation", "42", "--job", "job-7", "--read-only", "--ttl", "7d"], db)
    assert created.returncode == 0, created.stderr
    with cli_store.reading() as session:
        row = session.get(ApiToken, token_id(created.stdout.strip()))
    assert (row.job_id, row.repo, row.read_only) == ("job-7", "octo/hello", True)  # the job's repository
    assert row.expires_at.replace(tzinfo=UTC) - datetime.now(UTC) > timedelta(days=6, hours=23)


def test_a_job_token_is_bound_to_a_repository_named_or_found(db, cli_store):
    unknown = run(["tokens", "create", "--installation", "42", "--job", "job-8"], db)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "no job job-8" in unknown.stderr and "--repo OWNER/NAME" in unknown.stderr
    for args in (["--job", "job-8", "--repo", "octo/hello"], ["--repo", "octo/hello"]):
        created = run(["tokens", "create", "--installation", "42", *args], db)
        assert created.returncode == 0, created.stderr
        assert "octo/hello" in created.stderr
        token = created.stdout.strip()
        with TestClient(api_app(cli_store)) as client:
            mine = client.put("/api/v1/contexts/octo/hello/wowdomain/job-8", json={"data": {}}, headers=bearer(token))
            theirs = client.put("/api/v1/contexts/octo/other/wowdomain/job-8", json={"data": {}}, headers=bearer(token))
        assert mine.status_code in (201, 409) and theirs.status_code == 403
    assert run(["tokens", "create", "--installation", "42", "--repo", "octo"], db).returncode == 2
    too_long = run(["tokens", "create", "--installation", "42", "--job", "job-" + "a" * 61, "--repo", "octo/hello"], db)
    assert too_long.returncode == 2 and "a job id has 1 to 64 characters" in too_long.stderr


@pytest.mark.parametrize("ttl", ["31d", "0h", "soon", "1x"])
def test_tokens_create_refuses_a_bad_ttl(db, ttl):
    refused = run(["tokens", "create", "--installation", "42", "--ttl", ttl], db)
    assert refused.returncode == 2 and refused.stdout == "" and "--ttl" in refused.stderr


def test_tokens_revoke_by_token_or_by_id(db, cli_store):
    first, second = issue(cli_store, 42), issue(cli_store, 42)
    by_token = run(["tokens", "revoke", first], db)
    assert by_token.returncode == 0 and by_token.stdout.strip() == f"revoked {token_id(first)}"
    assert run(["tokens", "revoke", token_id(second)], db).returncode == 0
    with TestClient(api_app(cli_store)) as client:
        for token in (first, second):
            assert client.get("/api/v1/contexts", headers=bearer(token)).status_code == 401
    assert run(["tokens", "revoke", "0123456789abcdef"], db).returncode == 1
    assert run(["tokens", "revoke", "not-a-token"], db).returncode == 2


def test_context_commands_on_the_store(db, cli_store):
    client = DbContextClient(cli_store, Grant(42, actor="test"))
    client.put(
        "octo/hello",
        "wowdomain",
        "job-1",
        {"spec": "draft"},
        expected_version=None,
        summary="first draft",
        tags=["coe"],
    )
    client.put("octo/hello", "wowdomain", "job-1", {"spec": "final"}, expected_version=1, summary="final spec")

    shown = run(["context", "show", "octo/hello", "wowdomain", "job-1"], db)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["data"] == {"spec": "final"} and json.loads(shown.stdout)["version"] == 2
    older = run(["context", "show", "octo/hello", "wowdomain", "job-1", "--version", "1"], db)
    assert json.loads(older.stdout)["data"] == {"spec": "draft"}
    assert run(["context", "show", "octo/hello", "wowdomain", "nope"], db).returncode == 1

    found = run(["context", "search", "--repo", "octo/hello", "--q", "final"], db)
    assert found.returncode == 0 and "job-1" in found.stdout and "v2" in found.stdout

    snapshot = run(["context", "snapshot", "octo/hello", "--scope-prefix", "job-1"], db)
    assert snapshot.returncode == 0, snapshot.stderr
    snapshot_id = snapshot.stdout.strip()
    client.put("octo/hello", "wowdomain", "job-1", {"spec": "broken"}, expected_version=2)
    restored = run(["context", "restore", snapshot_id], db)
    assert restored.returncode == 0 and "v4  (restores v2)" in restored.stdout
    assert client.get("octo/hello", "wowdomain", "job-1").data == {"spec": "final"}

    lineage = run(["context", "lineage", "octo/hello", "wowdomain", "job-1", "--json"], db)
    assert [(v["version"], v["parent"]) for v in json.loads(lineage.stdout)] == [(1, None), (2, 1), (4, 2)]


def test_a_job_with_only_the_api_url_and_a_token(cli_store):
    """What a CoE job on an Actions runner has: no database, an API URL and a scoped token."""
    token = issue(cli_store, 42, job_id="job-9", repo="octo/hello")
    with live_server(api_app(cli_store)) as base:
        env = {"WAOOAW_API_URL": base, "WAOOAW_API_TOKEN": token, "WAOOAW_DATABASE_URL": UNREACHABLE_DB}
        job = textwrap.dedent(
            """
            from bot.wiring import open_context_client
            from bot.settings import Settings

            with open_context_client(Settings()) as client:
                version = client.put("octo/hello", "wowdomain", "job-9", {"phase": "research"}, expected_version=None)
                client.update("octo/hello", "wowdomain", "job-9", lambda data: {**data, "phase": "draft"})
                print(version, client.get("octo/hello", "wowdomain", "job-9").data["phase"])
            """
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
        ran = subprocess.run(
            [sys.executable, "-c", job], capture_output=True, text=True, env={**clean, **env}, cwd=ROOT, timeout=120
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.split() == ["1", "draft"]

        shown = run(["context", "show", "octo/hello", "wowdomain", "job-9"], env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["data"] == {"phase": "draft"} and json.loads(shown.stdout)["job"] == "job-9"
        snapshot = run(["context", "snapshot", "octo/hello", "--scope-prefix", "job-9"], env)
        assert snapshot.returncode == 0, snapshot.stderr
        restored = run(["context", "restore", snapshot.stdout.strip()], env)
        assert restored.returncode == 0 and "v3  (restores v2)" in restored.stdout
        lineage = run(["context", "lineage", "octo/hello", "wowdomain", "job-9"], env)
        assert lineage.returncode == 0 and lineage.stdout.count("\n") == 3 and "job job-9" in lineage.stdout
        refused = run(["context", "show", "octo/hello", "wowdomain", "job-1"], env)
        assert refused.returncode == 1 and "403" in refused.stderr
        no_token = run(["context", "show", "octo/hello", "wowdomain", "job-9"], {**env, "WAOOAW_API_TOKEN": ""})
        assert no_token.returncode == 2 and "WAOOAW_API_TOKEN" in no_token.stderr
