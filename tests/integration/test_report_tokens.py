"""Report pages take the Context API's own tokens: valid ones read their installation's report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from agents import tokens
from bot.app import create_app
from tests.conftest import TEST_SECRET
from tests.helpers import make_platform


def issue(store, installation_id, **options):
    with store.session() as session:
        return tokens.issue(session, installation_id=installation_id, **options).token


def test_an_installation_token_reads_reports_and_a_bad_one_does_not(store):
    platform = make_platform(store)
    read_only = issue(store, 42, read_only=True)
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        ok = client.get("/api/v1/reports/daily/2026-11-01", headers={"Authorization": f"Bearer {read_only}"})
        assert ok.status_code == 200, ok.text
        forged = read_only[:-4] + "AAAA"
        assert (
            client.get("/api/v1/reports/daily/2026-11-01", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )
        assert client.get("/reports").status_code == 401


def test_a_revoked_or_expired_token_is_refused(store):
    platform = make_platform(store)
    revoked = issue(store, 42)
    with store.session() as session:
        assert tokens.revoke(session, tokens.token_id(revoked)) is not None
    expired = issue(store, 42, ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(hours=1))
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        for token in (revoked, expired):
            response = client.get("/api/v1/reports/daily/2026-11-01", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401


def test_a_job_or_repository_token_cannot_read_the_installations_reports(store):
    """A report covers every repository of the installation: a token bound to one job or one
    repository (what a CoE runner holds) is refused, with why; the installation's token still reads."""
    platform = make_platform(store)
    bound = {
        "job": issue(store, 42, job_id="job-1", repo="octo/hello"),
        "repository": issue(store, 42, repo="octo/hello"),
    }
    with TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False)) as client:
        for kind, token in bound.items():
            for path in ("/api/v1/reports/daily/2026-11-01", "/reports/daily/2026-11-01", "/reports"):
                refused = client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert refused.status_code == 403, (kind, path, refused.text)
                assert "installation" in refused.json()["detail"]
        installation_wide = issue(store, 42, read_only=True)
        assert client.get("/reports", headers={"Authorization": f"Bearer {installation_wide}"}).status_code == 200
