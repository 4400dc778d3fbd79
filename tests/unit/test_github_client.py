"""bot.github against the fake GitHub server: the real githubkit client, over loopback."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog
from githubkit.exception import PrimaryRateLimitExceeded, RequestFailed, SecondaryRateLimitExceeded
from githubkit.response import Response
from pydantic import ValidationError

from bot.github import GitHubClients, GitHubCredentialsError, RetryPolicy, github_clients
from bot.ratelimit import Limiter, LocalLimits
from bot.settings import Settings
from tests.fakes.github import FakeGitHub, app_private_key
from tests.helpers import FakeClock

APP_ID = 123
REPO = "octo/repo"


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI may run with GITHUB_TOKEN set; these tests say exactly which credentials exist.
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "GITHUB_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(fresh_github: FakeGitHub) -> FakeGitHub:
    return fresh_github


def app_clients(fake: FakeGitHub, **options: Any) -> GitHubClients:
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_APP_ID=APP_ID, GITHUB_APP_PRIVATE_KEY=app_private_key())
    return GitHubClients(settings, max_wait=0.01, **options)


def token_clients(fake: FakeGitHub, **options: Any) -> GitHubClients:
    return GitHubClients(Settings(GITHUB_API_URL=fake.url, GITHUB_TOKEN="t0ken-for-tests"), max_wait=0.01, **options)


# ---------------------------------------------------------------- auth


def test_app_auth_mints_one_installation_token_and_reuses_it(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "write")
    clients = app_clients(fake)

    async def run() -> list[str]:
        return [await clients.permission(77, REPO, "alice") for _ in range(3)]

    assert asyncio.run(run()) == ["write"] * 3
    assert len(fake.calls("POST", r"^/app/installations/77/access_tokens$")) == 1
    assert fake.jwt_claims[0]["iss"] == str(APP_ID)
    assert fake.jwt_claims[0]["exp"] - fake.jwt_claims[0]["iat"] <= 600
    permission_calls = fake.calls("GET", r"/permission$")
    assert {c.headers["authorization"] for c in permission_calls} == {f"token {fake.minted_tokens[0]}"}
    assert all(c.headers["user-agent"] == "waooaw" for c in fake.requests)
    assert clients.mode == "app" and clients.tokens_minted == 1


def test_concurrent_first_calls_mint_once(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    clients = app_clients(fake)

    async def run() -> list[str]:
        return list(await asyncio.gather(*(clients.permission(5, REPO, "alice") for _ in range(5))))

    assert asyncio.run(run()) == ["read"] * 5
    assert len(fake.calls("POST", r"/access_tokens$")) == 1


def test_each_installation_has_its_own_token(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    clients = app_clients(fake)

    async def run() -> None:
        for installation in (1, 2, 1, 2):
            await clients.permission(installation, REPO, "alice")

    asyncio.run(run())
    assert [c.path for c in fake.calls("POST", r"/access_tokens$")] == [
        "/app/installations/1/access_tokens",
        "/app/installations/2/access_tokens",
    ]


def test_token_is_refreshed_five_minutes_before_expiry(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    fake.token_ttl = timedelta(minutes=4)  # already inside the refresh margin
    clients = app_clients(fake)

    async def run() -> None:
        await clients.permission(9, REPO, "alice")
        await clients.permission(9, REPO, "alice")

    asyncio.run(run())
    assert len(fake.calls("POST", r"/access_tokens$")) == 2


def test_revoked_token_is_replaced_and_the_request_replayed(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "admin")
    clients = app_clients(fake)

    async def run() -> list[str]:
        first = await clients.permission(3, REPO, "alice")
        fake.revoke_tokens()
        return [first, await clients.permission(3, REPO, "alice")]

    assert asyncio.run(run()) == ["admin", "admin"]
    assert len(fake.minted_tokens) == 2
    assert fake.calls("GET", r"/permission$")[-1].headers["authorization"] == f"token {fake.minted_tokens[1]}"


def test_token_auth_sends_the_token_and_mints_nothing(fake: FakeGitHub) -> None:
    fake.set_permission("bob", "maintain")
    clients = token_clients(fake)
    assert clients.mode == "token"
    assert asyncio.run(clients.permission(None, REPO, "bob")) == "maintain"
    assert fake.calls("POST", r"/access_tokens$") == []
    assert fake.requests[-1].headers["authorization"] == "token t0ken-for-tests"


def test_app_credentials_with_token_fall_back_to_token_without_installation(fake: FakeGitHub) -> None:
    fake.set_permission("bob", "read")
    settings = Settings(
        GITHUB_API_URL=fake.url, GITHUB_APP_ID=APP_ID, GITHUB_APP_PRIVATE_KEY=app_private_key(), GITHUB_TOKEN="fallback"
    )
    clients = GitHubClients(settings, max_wait=0.01)
    assert asyncio.run(clients.permission(None, REPO, "bob")) == "read"
    assert fake.requests[-1].headers["authorization"] == "token fallback"


def test_no_credentials_means_dry_run() -> None:
    settings = Settings()
    assert github_clients(settings) is None
    with pytest.raises(GitHubCredentialsError, match="GITHUB_TOKEN"):
        GitHubClients(settings)


def test_app_auth_without_installation_id_is_a_clear_error(fake: FakeGitHub) -> None:
    with pytest.raises(GitHubCredentialsError, match="installation id"):
        app_clients(fake).for_installation(None)


def test_unreadable_private_key_fails_at_start_without_echoing_it() -> None:
    settings = Settings(GITHUB_APP_ID=APP_ID, GITHUB_APP_PRIVATE_KEY="not-a-key-SECRET")
    with pytest.raises(GitHubCredentialsError) as raised:
        GitHubClients(settings)
    assert "SECRET" not in str(raised.value)


def test_escaped_newlines_in_the_key_are_accepted(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    escaped = app_private_key().strip().replace("\n", "\\n")
    settings = Settings(GITHUB_API_URL=fake.url, GITHUB_APP_ID=APP_ID, GITHUB_APP_PRIVATE_KEY=escaped)
    assert asyncio.run(GitHubClients(settings).permission(1, REPO, "alice")) == "read"


def test_tokens_and_keys_are_never_logged(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    fake.fail_next("GET", r"/permission$", 502)
    clients = app_clients(fake)
    with structlog.testing.capture_logs() as logs:
        asyncio.run(clients.permission(4, REPO, "alice"))
    text = repr(logs) + repr(clients)
    assert logs, "minting and retrying are logged"
    assert fake.minted_tokens[0] not in text
    assert "PRIVATE KEY" not in text


# ---------------------------------------------------------------- retries


def test_server_error_is_retried(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "triage")
    fake.fail_next("GET", r"/collaborators/alice/permission$", 500)
    assert asyncio.run(token_clients(fake).permission(None, REPO, "alice")) == "triage"
    assert [c.status for c in fake.calls("GET", r"/permission$")] == [500, 200]


def test_server_errors_give_up_after_max_retries(fake: FakeGitHub) -> None:
    fake.fail_next("GET", r"/permission$", 503, times=10)
    with pytest.raises(RequestFailed):
        asyncio.run(token_clients(fake, max_retries=2).permission(None, REPO, "alice"))
    assert len(fake.calls("GET", r"/permission$")) == 3


def limited_clients(fake: FakeGitHub, clock: FakeClock, budget: float = 600) -> GitHubClients:
    return token_clients(fake, limiter=Limiter(LocalLimits(), budget=budget, clock=clock))


def test_secondary_rate_limit_retry_after_is_honoured(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    fake.fail_next(
        "GET",
        r"/permission$",
        403,
        headers={"retry-after": "7"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    clock = FakeClock()
    assert asyncio.run(limited_clients(fake, clock).permission(None, REPO, "alice")) == "read"
    assert [c.status for c in fake.calls("GET", r"/permission$")] == [403, 200]
    assert sum(clock.slept) == pytest.approx(7)  # the retry went when GitHub said, not before


def test_primary_rate_limit_waits_for_reset(fake: FakeGitHub) -> None:
    clock = FakeClock()
    reset = int(clock.now()) + 40
    fake.fail_next(
        "POST", r"/issues/1/comments$", 429, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    github = limited_clients(fake, clock).for_installation(None)
    asyncio.run(github.rest.issues.async_create_comment("octo", "repo", 1, body="hi"))
    assert [c.status for c in fake.calls("POST", r"/comments$")] == [429, 201]
    assert len(fake.comments) == 1
    assert clock.now() >= reset and sum(clock.slept) == pytest.approx(41)  # the reset, and a second for skew


def test_rate_limit_without_a_time_waits_a_minute(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "read")
    fake.fail_next("GET", r"/permission$", 429, body={"message": "Too many requests"})
    clock = FakeClock()
    assert asyncio.run(limited_clients(fake, clock).permission(None, REPO, "alice")) == "read"
    assert sum(clock.slept) == pytest.approx(60)


@pytest.mark.parametrize("status", [403, 404, 422])
def test_client_errors_are_not_retried(fake: FakeGitHub, status: int) -> None:
    fake.fail_next("GET", r"/permission$", status, times=5)
    github = token_clients(fake).for_installation(None)
    with pytest.raises(RequestFailed):
        asyncio.run(github.rest.repos.async_get_collaborator_permission_level("octo", "repo", "alice"))
    assert len(fake.calls("GET", r"/permission$")) == 1


def _failed(status: int, headers: dict[str, str], body: bytes = b"{}") -> httpx.Response:
    return httpx.Response(
        status, headers=headers, content=body, request=httpx.Request("GET", "https://api.github.com/x")
    )


def test_retry_policy_retries_rate_limits_at_once_and_backs_off_server_errors() -> None:
    # A rate limit is retried at once because the limiter holds the retry (tests/integration/test_github_limits.py).
    policy = RetryPolicy(max_retries=3, max_wait=600)
    secondary = SecondaryRateLimitExceeded(Response(_failed(403, {"retry-after": "7"}), Any), timedelta(seconds=7))
    primary = PrimaryRateLimitExceeded(
        Response(_failed(403, {"x-ratelimit-remaining": "0"}), Any), timedelta(seconds=60)
    )
    untold = RequestFailed(Response(_failed(429, {}), Any))
    worded = RequestFailed(Response(_failed(403, {}, b'{"message": "secondary rate limit"}'), Any))
    for limited in (secondary, primary, untold, worded):
        option = policy(limited, 1)
        assert option.do_retry and timedelta(0) < option.retry_after < timedelta(seconds=0.01)
    assert not policy(secondary, 3).do_retry
    assert not policy(
        RequestFailed(Response(_failed(403, {}, b'{"message": "Resource not accessible"}'), Any)), 0
    ).do_retry
    assert policy(RequestFailed(Response(_failed(502, {}), Any)), 2).retry_after == timedelta(seconds=4)
    assert not policy(RequestFailed(Response(_failed(502, {}), Any)), 3).do_retry
    capped = RetryPolicy(max_wait=0.5)(RequestFailed(Response(_failed(502, {}), Any)), 2)
    assert capped.retry_after == timedelta(seconds=0.5)


def test_request_bodies_are_validated_before_sending(fake: FakeGitHub) -> None:
    github = token_clients(fake).for_installation(None)
    annotation = {"path": "a.py", "start_line": 1, "end_line": 1, "annotation_level": "warning", "message": "m"}
    with pytest.raises(ValidationError):
        asyncio.run(
            github.rest.checks.async_create(
                "octo",
                "repo",
                name="x",
                head_sha="a" * 40,
                output={"title": "t", "summary": "s", "annotations": [annotation] * 51},
            )
        )
    assert fake.requests == []


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("level", ["admin", "maintain", "write", "triage", "read", "none"])
def test_permission_levels(fake: FakeGitHub, level: str) -> None:
    fake.set_permission("carol", level)
    clients = token_clients(fake)
    assert asyncio.run(clients.permission(None, REPO, "carol")) == level
    assert asyncio.run(clients.can_write(None, REPO, "carol")) is (level in ("admin", "maintain", "write"))


def test_unknown_user_is_none_and_cannot_write(fake: FakeGitHub) -> None:
    clients = token_clients(fake)
    assert asyncio.run(clients.permission(None, REPO, "stranger")) == "none"
    assert asyncio.run(clients.can_write(None, REPO, "stranger")) is False
    assert fake.requests[-1].status == 404


def test_the_calls_of_every_installation_share_open_connections(fake: FakeGitHub) -> None:
    fake.set_permission("alice", "write")
    clients = app_clients(fake)

    async def calls() -> None:
        for installation in (1, 2, 1, 2):  # one after the other: one connection is enough
            await clients.permission(installation, REPO, "alice")

    async def calls_then_close() -> None:
        await calls()
        await clients.aclose()

    asyncio.run(calls_then_close())
    assert len(fake.requests) == 6  # two token mints as the App, four calls as two installations
    assert len({call.peer for call in fake.requests}) == 1
    first = fake.requests[0].peer
    asyncio.run(calls())  # after aclose, and on another event loop: a pool of its own
    later = {call.peer for call in fake.requests[6:]}
    assert len(later) == 1 and first not in later


def test_sync_calls_use_the_same_token_cache(fake: FakeGitHub) -> None:
    fake.set_permission("dave", "write")
    clients = app_clients(fake)
    github = clients.for_installation(12)
    for _ in range(2):
        response = github.rest.repos.get_collaborator_permission_level("octo", "repo", "dave")
        assert response.parsed_data.role_name == "write"
    assert asyncio.run(clients.permission(12, REPO, "dave")) == "write"
    assert len(fake.calls("POST", r"/access_tokens$")) == 1
