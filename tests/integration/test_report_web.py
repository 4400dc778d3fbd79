"""The report on the app: GET /reports, /reports/daily/{date}, /api/v1/reports/daily/{date}, their
read token, and `waooaw report daily` reading that API instead of the store (real PostgreSQL)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agents.reports import DailyReport, build_daily_report
from bot.app import create_app
from bot.daily_report import run_daily
from bot.reports_web import ReportAccess
from bot.settings import Settings
from tests.conftest import TEST_SECRET
from tests.helpers import make_platform, make_settings
from tests.integration.report_seed import expected, seed

DAY = date(2026, 3, 10)
TOKEN = "report-reader-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("WAOOAW_", "GITHUB_")):
            monkeypatch.delenv(name)


def client_for(store, **settings: Any) -> TestClient:
    platform = make_platform(store, settings=make_settings(**settings))
    return TestClient(create_app(platform, secret=TEST_SECRET, run_worker=False))


def same_report(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for when each was made."""
    drop = ("generated_at", "complete", "notes")
    return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def test_every_report_route_needs_a_read_token(pg_store):
    client = client_for(pg_store, WAOOAW_REPORTS_TOKEN=TOKEN)
    for path in ("/reports", f"/reports/daily/{DAY}", f"/api/v1/reports/daily/{DAY}"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            challenge = "Bearer" if path.startswith("/api/") else "Basic"
            assert response.headers["www-authenticate"].startswith(challenge)
        assert client.get(path, headers=BEARER).status_code == 200, path
    # A browser: the token as the Basic password, any user name.
    basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    assert client.get(f"/reports/daily/{DAY}", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_without_a_reports_token_only_api_tokens_are_accepted(pg_store):
    # No WAOOAW_REPORTS_TOKEN: the Context API's tokens are the read tokens (tests/integration/test_report_tokens.py).
    response = client_for(pg_store).get(f"/api/v1/reports/daily/{DAY}", headers=BEARER)
    assert response.status_code == 401 and "not valid" in response.json()["detail"]


def test_the_json_is_the_report_of_the_store(pg_store):
    seeded = seed(pg_store, DAY, scale=2)
    client = client_for(pg_store, WAOOAW_REPORTS_TOKEN=TOKEN, WAOOAW_REPORT_BUDGET_USD=3.0)
    response = client.get(f"/api/v1/reports/daily/{DAY}", headers=BEARER)
    assert response.status_code == 200
    served = DailyReport.model_validate(response.json())
    assert served.headline.events == expected(seeded)["events"] and served.headline.budget_usd == 3.0
    direct = build_daily_report(pg_store, DAY, "UTC", budget_usd=3.0)
    assert same_report(response.json(), direct.model_dump(mode="json"))


def test_a_pluggable_token_check_can_scope_the_report_to_one_installation(pg_store):
    seeded = seed(pg_store, DAY, scale=2)
    client = client_for(pg_store)  # no WAOOAW_REPORTS_TOKEN: the app's check decides alone

    async def check(token: str) -> ReportAccess | None:
        return ReportAccess(installation_id=2) if token == "wao_0123456789abcdef_secret" else None

    client.app.state.report_token_check = check
    assert client.get(f"/api/v1/reports/daily/{DAY}", headers=BEARER).status_code == 401
    response = client.get(
        f"/api/v1/reports/daily/{DAY}", headers={"Authorization": "Bearer wao_0123456789abcdef_secret"}
    )
    assert response.status_code == 200
    assert response.json()["headline"]["events"] == expected(seeded, installation_id=2)["events"]


def test_html_report_renders_the_markdown_with_inline_charts_and_nothing_unescaped(pg_store):
    seed(pg_store, DAY, scale=2)
    client = client_for(pg_store, WAOOAW_REPORTS_TOKEN=TOKEN)
    response = client.get(f"/reports/daily/{DAY}", headers=BEARER)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"<title>WAOOAW daily report — {DAY}</title>" in page
    assert "<h2>Headline</h2>" in page and "<table>" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_dates_are_checked_and_the_index_lists_days_with_data(pg_store):
    client = client_for(pg_store, WAOOAW_REPORTS_TOKEN=TOKEN)
    assert client.get("/api/v1/reports/daily/not-a-date", headers=BEARER).status_code == 400
    future = client.get(f"/api/v1/reports/daily/{date.today() + timedelta(days=3)}", headers=BEARER)
    assert future.status_code == 400 and "has not started" in future.json()["detail"]
    assert "No data in the store yet" in client.get("/reports", headers=BEARER).text
    empty = client.get("/api/v1/reports/daily/yesterday", headers=BEARER).json()
    assert empty["headline"]["events"] == 0

    yesterday = datetime.now(UTC) - timedelta(days=1)
    seed(pg_store, yesterday.date(), scale=1)
    index = client.get("/reports", headers=BEARER).text
    today = datetime.now(UTC).date()
    assert f'href="reports/daily/{today}"' in index and f'href="reports/daily/{yesterday.date()}"' in index
    assert f'href="api/v1/reports/daily/{today}"' in index
    assert f'href="reports/daily/{today - timedelta(days=40)}"' not in index


# ------------------------------------------------------------------ API mode of the command


@pytest.fixture
def served_app(pg_store) -> Iterator[str]:
    """The app on a loopback port, as the report workflow reaches it."""
    platform = make_platform(pg_store, settings=make_settings(WAOOAW_REPORTS_TOKEN=TOKEN))
    config = uvicorn.Config(
        create_app(platform, secret=TEST_SECRET, run_worker=False), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the app did not start"
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def without_generated_line(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "generated" not in line and "not over" not in line)


def test_the_command_reads_the_report_api_and_writes_what_the_store_would_give(
    pg_store, served_app, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    seed(pg_store, DAY, scale=2)
    via_api = Settings(
        WAOOAW_API_URL=served_app, WAOOAW_API_TOKEN=TOKEN, WAOOAW_DATABASE_URL=f"sqlite:///{tmp_path / 'local.db'}"
    )
    run_daily(via_api, DAY.isoformat(), None, Path("api"), post=False, catch_up=0)
    run_daily(Settings(WAOOAW_DATABASE_URL=pg_store.url), DAY.isoformat(), None, Path("db"), post=False, catch_up=0)
    from_api = (tmp_path / "api" / "daily" / f"{DAY}.md").read_text()
    from_db = (tmp_path / "db" / "daily" / f"{DAY}.md").read_text()
    assert without_generated_line(from_api) == without_generated_line(from_db)
    for chart in ("decisions", "cost"):
        assert (tmp_path / "api" / "daily" / f"{DAY}-{chart}.png").read_bytes() == (
            tmp_path / "db" / "daily" / f"{DAY}-{chart}.png"
        ).read_bytes()

    refused = Settings(WAOOAW_API_URL=served_app, WAOOAW_API_TOKEN="wrong")
    from bot.daily_report import ReportError

    with pytest.raises(ReportError, match="refused WAOOAW_API_TOKEN"):
        run_daily(refused, DAY.isoformat(), None, Path("x"), post=False, catch_up=0)
