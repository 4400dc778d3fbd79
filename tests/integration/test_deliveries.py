"""Missed deliveries fetched back: the App's deliveries on the fake GitHub, our real inbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from agents.store.db import Store
from bot.app import create_app
from bot.deliveries import RECOVERY_JOB, recover, recovery_schedule, scheduled
from bot.github import GitHubClients
from bot.inbox import Inbox, InboxStatus
from bot.schedule import Lease, Leases, run_every
from bot.webhooks import parse_delivery
from tests.conftest import TEST_SECRET, fixture_path
from tests.fakes.github import FakeGitHub, app_private_key
from tests.helpers import make_platform, make_settings, signed_headers

APP_ID = 4242
# Each test reads the clock itself: a module-wide time aged its deliveries past --since in a slow run.


def app_settings(github: FakeGitHub, **overrides: Any) -> Any:
    return make_settings(
        GITHUB_APP_ID=APP_ID, GITHUB_APP_PRIVATE_KEY=app_private_key(), GITHUB_API_URL=github.url, **overrides
    )


def run_recovery(github: FakeGitHub, store: Store, since: timedelta = timedelta(hours=72), **options: Any) -> Any:
    return asyncio.run(recover(GitHubClients(app_settings(github), max_wait=1), Inbox(store), since, **options))


def in_inbox(store: Store, *guids: str) -> None:
    body = fixture_path("issues/opened.payload.json").read_bytes()
    Inbox(store).record_many(
        [(parse_delivery(body, event="issues", delivery_id=guid), InboxStatus.DONE) for guid in guids]
    )


def wait_until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {what}")
        time.sleep(0.02)


def test_recovery_redelivers_exactly_the_deliveries_the_inbox_missed(fresh_github, store):
    now = datetime.now(UTC)
    gh = fresh_github

    def hours(n: int) -> datetime:
        return now - timedelta(hours=n)

    failed = gh.add_hook_delivery("failed", "issues", action="opened", status_code=503, delivered_at=hours(5))
    no_answer = gh.add_hook_delivery("no-answer", "push", status_code=0, delivered_at=hours(4))
    elsewhere_ok = gh.add_hook_delivery("ok-not-ours", "issues", action="closed", delivered_at=hours(3))
    gh.add_hook_delivery("failed-twice", "issue_comment", action="created", status_code=502, delivered_at=hours(10))
    retry = gh.add_hook_delivery(
        "failed-twice", "issue_comment", action="created", status_code=504, delivered_at=hours(9), redelivery=True
    )
    gh.add_hook_delivery("slow-but-ours", "issues", action="opened", status_code=0, delivered_at=hours(2))
    gh.add_hook_delivery("ours", "issues", action="opened", delivered_at=hours(1))
    gh.add_hook_delivery("too-old", "issues", action="opened", status_code=503, delivered_at=hours(80))
    gh.add_hook_delivery("redelivered-elsewhere", "issues", status_code=503, delivered_at=hours(6))
    gh.add_hook_delivery("redelivered-elsewhere", "issues", delivered_at=hours(5.5), redelivery=True)
    in_inbox(store, "slow-but-ours", "ours")

    recovery = run_recovery(gh, store)

    # oldest first, each guid once (its newest attempt), none the inbox holds, none older than --since
    assert gh.redelivery_requests == [retry["id"], failed["id"], no_answer["id"], elsewhere_ok["id"]]
    assert recovery.ok and recovery.elsewhere == ["redelivered-elsewhere"]
    assert [m.reason for m in recovery.redelivered] == [
        "failed: Invalid HTTP Response: 504",
        "failed: Invalid HTTP Response: 503",
        "failed: timed out",
        "answered OK but not in the inbox",
    ]
    assert recovery.lines()[0].startswith("redelivered failed-twice issue_comment.created (failed: Invalid HTTP")
    assert recovery.lines()[-1].endswith(
        f"9 attempt(s) of 7 delivery(ies) since {recovery.since:%Y-%m-%d %H:%M:%SZ}: 4 missed, 4 redelivered, 0 refused"
    )
    assert gh.calls("POST", "/app/hook/deliveries")[0].headers["authorization"].startswith("Bearer ")  # the App's JWT


def test_paging_follows_the_cursor_and_stops_at_since(fresh_github, sqlite_store):
    now = datetime.now(UTC)
    gh = fresh_github
    recent = [
        gh.add_hook_delivery(f"recent-{n}", "push", status_code=500, delivered_at=now - timedelta(minutes=n))
        for n in range(1, 231)
    ]
    for n in range(300):
        gh.add_hook_delivery(f"old-{n}", "push", status_code=500, delivered_at=now - timedelta(hours=5, minutes=n))

    recovery = run_recovery(gh, sqlite_store, since=timedelta(hours=4))

    pages = gh.calls("GET", "^/app/hook/deliveries$")
    assert [call.query.get("cursor") for call in pages] == [None, f"v1_{recent[99]['id']}", f"v1_{recent[199]['id']}"]
    assert sorted(gh.redelivery_requests) == sorted(attempt["id"] for attempt in recent)
    assert recovery.attempts == 230


def test_a_dry_run_lists_and_changes_nothing(fresh_github, sqlite_store):
    gh = fresh_github
    gh.add_hook_delivery("failed", "issues", action="opened", status_code=503)
    recovery = run_recovery(gh, sqlite_store, dry_run=True)
    assert gh.calls("POST", "/app/hook/deliveries") == [] and gh.redelivery_requests == []
    assert [m.guid for m in recovery.missed] == ["failed"] and recovery.redelivered == []
    assert recovery.lines()[0].startswith("would redeliver failed issues.opened (failed: Invalid HTTP Response: 503")
    assert Inbox(sqlite_store).known(["failed"]) == set()


def test_a_repeated_run_leaves_what_the_redelivery_brought_into_the_inbox(fresh_github, store):
    """GitHub redelivers to our real intake; the second run finds the delivery there and asks nothing."""
    gh = fresh_github
    body = fixture_path("issues/opened.payload.json").read_bytes()
    with TestClient(create_app(make_platform(store), secret=TEST_SECRET, run_worker=False)) as intake:
        gh.deliver = lambda attempt, payload: (
            intake.post(
                "/webhooks/github", content=body, headers=signed_headers(body, attempt["event"], attempt["guid"])
            ).status_code
        )
        gh.add_hook_delivery("lost", "issues", action="opened", status_code=503)
        first = run_recovery(gh, store)
        second = run_recovery(gh, store)
    assert [m.guid for m in first.redelivered] == ["lost"] and Inbox(store).known(["lost"]) == {"lost"}
    assert second.redelivered == [] and second.missed == [] and len(gh.redelivery_requests) == 1
    assert [attempt["status_code"] for attempt in gh.hook_deliveries] == [503, 202]


def test_a_refused_redelivery_is_reported_and_the_others_still_asked(fresh_github, sqlite_store):
    now = datetime.now(UTC)
    gh = fresh_github
    first = gh.add_hook_delivery("first", "push", status_code=503, delivered_at=now - timedelta(hours=2))
    gh.add_hook_delivery("second", "push", status_code=503, delivered_at=now - timedelta(hours=1))
    gh.fail_next("POST", rf"/app/hook/deliveries/{first['id']}/attempts", 422, body={"message": "Validation Failed"})
    recovery = run_recovery(gh, sqlite_store)
    assert not recovery.ok and [m.guid for m in recovery.redelivered] == ["second"]
    assert [(m.guid, why.split()[0]) for m, why in recovery.refused] == [("first", "422")]


# --------------------------------------------------------------------------- the schedule


def test_a_scheduled_run_starts_an_interval_before_the_last_run_began(fresh_github, sqlite_store):
    now = datetime.now(UTC)
    gh = fresh_github
    gh.add_hook_delivery("seen-by-the-last-run", "push", status_code=503, delivered_at=now - timedelta(hours=2))
    later = gh.add_hook_delivery("after-it", "push", status_code=503, delivered_at=now - timedelta(minutes=50))
    clients = GitHubClients(app_settings(gh), max_wait=1)
    lease = Lease(RECOVERY_JOB, last_done_at=now - timedelta(hours=1))
    asyncio.run(scheduled(clients, Inbox(sqlite_store), timedelta(minutes=15), lease))
    assert gh.redelivery_requests == [later["id"]]


def test_the_app_runs_the_recovery_on_its_schedule_in_app_mode(fresh_github, sqlite_store):
    gh = fresh_github
    lost = gh.add_hook_delivery("lost", "issues", action="opened", status_code=503)
    settings = app_settings(gh, WAOOAW_DELIVERIES_RECOVER_INTERVAL="1h")
    platform = make_platform(sqlite_store, settings=settings)
    platform.github = GitHubClients(settings, max_wait=1)
    with TestClient(create_app(platform, secret="s", run_worker=False)):
        wait_until(lambda: gh.redelivery_requests, "the scheduled recovery's redelivery")
    assert gh.redelivery_requests == [lost["id"]]


def test_the_schedule_is_on_by_default_in_app_mode_and_off_at_0_or_without_app_credentials(fresh_github, sqlite_store):
    inbox = Inbox(sqlite_store)
    on = app_settings(fresh_github)
    off = app_settings(fresh_github, WAOOAW_DELIVERIES_RECOVER_INTERVAL="0")
    token = make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fresh_github.url)
    schedule = recovery_schedule(on, GitHubClients(on), inbox, asyncio.Event())
    assert schedule is not None and on.deliveries_recover_interval == timedelta(minutes=15)
    schedule.close()  # never run
    assert recovery_schedule(off, GitHubClients(off), inbox, asyncio.Event()) is None
    assert recovery_schedule(token, GitHubClients(token), inbox, asyncio.Event()) is None
    assert recovery_schedule(on, None, inbox, asyncio.Event()) is None


def test_a_lease_is_held_by_one_process_until_it_lapses(pg_store):
    now = datetime.now(UTC)
    second_process = Store(pg_store.url)
    one, other = Leases(pg_store, "one"), Leases(second_process, "other")
    taken = one.take(RECOVERY_JOB, timedelta(hours=1))
    assert taken is not None and taken.last_done_at is None
    assert other.take(RECOVERY_JOB, timedelta(hours=1)) is None
    one.done(taken, now)
    again = one.take(RECOVERY_JOB, timedelta(seconds=0))  # its holder keeps it from one tick to the next
    assert again is not None and again.last_done_at == now
    lapsed = other.take(RECOVERY_JOB, timedelta(hours=1))
    second_process.dispose()
    assert lapsed is not None and lapsed.last_done_at == now


def test_of_two_processes_one_runs_the_scheduled_recovery(fresh_github, pg_store):
    """Two app processes (each its own engine and GitHub clients) start their schedules at once."""
    gh = fresh_github
    lost = gh.add_hook_delivery("lost", "issues", action="opened", status_code=503)
    settings = app_settings(gh, WAOOAW_DELIVERIES_RECOVER_INTERVAL="1h")
    takes: list[bool] = []

    class Counted(Leases):
        def take(self, name: str, duration: timedelta) -> Lease | None:
            lease = super().take(name, duration)
            takes.append(lease is not None)
            return lease

    stores = [Store(pg_store.url) for _ in range(2)]

    async def two_processes() -> None:
        stop = asyncio.Event()
        runs = []
        for n, store in enumerate(stores):
            inbox = Inbox(store)
            clients = GitHubClients(settings, max_wait=1)
            runs.append(
                run_every(
                    timedelta(hours=1),
                    RECOVERY_JOB,
                    lambda lease, c=clients, i=inbox: scheduled(c, i, timedelta(hours=1), lease),
                    Counted(inbox.store, f"process-{n}"),
                    stop,
                )
            )
        tasks = [asyncio.create_task(run) for run in runs]
        while len(takes) < 2 or not gh.redelivery_requests:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(asyncio.wait_for(two_processes(), timeout=30))
    for store in stores:
        store.dispose()
    assert sorted(takes) == [False, True]
    assert gh.redelivery_requests == [lost["id"]] and len(gh.calls("GET", "^/app/hook/deliveries$")) == 1


# --------------------------------------------------------------------------- the command


def waooaw(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    clean.update({"WAOOAW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", **env})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=60
    )


def test_the_command_needs_the_app_credentials(tmp_path):
    result = waooaw(["deliveries", "recover"], tmp_path, GITHUB_TOKEN="ghs_test")
    assert result.returncode == 2 and "GITHUB_APP_ID" in result.stderr


def test_the_command_redelivers_prints_and_exits_1_when_a_redelivery_was_refused(fresh_github, tmp_path):
    now = datetime.now(UTC)
    gh = fresh_github
    assert waooaw(["db", "upgrade"], tmp_path).returncode == 0
    env = {"GITHUB_APP_ID": str(APP_ID), "GITHUB_APP_PRIVATE_KEY": app_private_key(), "GITHUB_API_URL": gh.url}
    refused = gh.add_hook_delivery("refused", "push", status_code=503, delivered_at=now - timedelta(hours=2))
    lost = gh.add_hook_delivery("lost", "issues", action="opened", status_code=0, delivered_at=now - timedelta(hours=1))

    listed = waooaw(["deliveries", "recover", "--since", "3h", "--dry-run"], tmp_path, **env)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:3] for line in listed.stdout.splitlines()[:2]] == [
        ["would", "redeliver", "refused"],
        ["would", "redeliver", "lost"],
    ]
    assert gh.redelivery_requests == []

    gh.fail_next("POST", rf"/app/hook/deliveries/{refused['id']}/attempts", 422)
    result = waooaw(["deliveries", "recover", "--since", "3h"], tmp_path, **env)
    assert result.returncode == 1, result.stderr
    assert "redelivered lost issues.opened (failed: timed out" in result.stdout
    assert "could not redeliver refused push: 422" in result.stdout

    # GitHub took `refused` this time; it says `lost` was redelivered with success, but not here: left alone
    done = waooaw(["deliveries", "recover"], tmp_path, **env)
    assert done.returncode == 0 and "1 missed, 1 redelivered, 0 refused" in done.stdout
    assert "left alone lost" in done.stdout and gh.redelivery_requests == [lost["id"], refused["id"]]
    bad = waooaw(["deliveries", "recover", "--since", "soon"], tmp_path, **env)
    assert bad.returncode == 2 and "--since 'soon'" in bad.stderr
