"""GitHub's rate limits (bot/ratelimit.py) and conditional reads (bot/conditional.py), on the real
Redis and in process, through the real githubkit client against the fake GitHub.

Time is a FakeClock: a wait is recorded and passes at once, so every figure asserted is the
wait the limiter asked for, never a measured one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from bot.github import GitHubClients
from bot.ratelimit import GitHubRateLimited, Limiter, LimitStore, LocalLimits, RedisLimits
from bot.reader import GitHubReader
from tests.fakes.github import FakeGitHub
from tests.helpers import FakeClock, make_settings

KEY = "installation:42"
API = "https://api.github.com"
COMMENT = httpx.Request("POST", f"{API}/repos/o/r/issues/1/comments")
READ = httpx.Request("GET", f"{API}/repos/o/r/issues/1/comments")
MINT = httpx.Request("POST", f"{API}/app/installations/42/access_tokens")
REDELIVER = httpx.Request("POST", f"{API}/app/hook/deliveries/7/attempts")


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"test:github:{uuid.uuid4().hex}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=name + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["local", "redis"])
def limits(request: pytest.FixtureRequest) -> LimitStore:
    """The same figures in process and in the real Redis."""
    if request.param == "local":
        return LocalLimits()
    return RedisLimits(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("prefix"))


def answer(status: int, headers: dict[str, str], body: bytes = b"{}") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body, request=READ)


# ---------------------------------------------------------------- content-creating calls


def test_content_creating_calls_are_paced_to_80_a_minute(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=3600, clock=clock)

    async def scenario() -> None:
        for _ in range(80):
            await limiter.before(KEY, COMMENT)
        assert clock.slept == []
        clock.advance(10)
        await limiter.before(KEY, READ)  # reads are not content
        await limiter.before(KEY, MINT)  # nor is a token
        await limiter.before(KEY, REDELIVER)  # nor anything outside a repository
        assert clock.slept == []
        await limiter.before(KEY, COMMENT)
        assert clock.slept == [pytest.approx(50)]  # the first of the 80 leaves the minute

    asyncio.run(scenario())


def test_content_creating_calls_are_paced_to_500_an_hour(limits: LimitStore) -> None:
    clock = FakeClock()
    start = clock.now()
    limiter = Limiter(limits, budget=3600, clock=clock)

    async def scenario() -> None:
        for _ in range(500):  # 7 s apart: never 80 in a minute
            await limiter.before(KEY, COMMENT)
            clock.advance(7)
        assert clock.slept == []
        await limiter.before(KEY, COMMENT)
        assert clock.now() == pytest.approx(start + 3600)  # the first of the 500 leaves the hour

    asyncio.run(scenario())


def test_a_call_over_its_budget_is_refused_without_taking_a_slot(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=10, clock=clock)

    async def scenario() -> None:
        for _ in range(80):
            await limiter.before(KEY, COMMENT)
        for _ in range(5):
            with pytest.raises(GitHubRateLimited) as refused:
                await limiter.before(KEY, COMMENT)
            assert refused.value.retry_after == pytest.approx(60)
        clock.advance(60)
        for _ in range(80):  # a refused call took no slot of this minute
            await limiter.before(KEY, COMMENT)
        assert clock.slept == []

    asyncio.run(scenario())


def test_pacing_holds_across_two_processes_sharing_redis(fresh_github: FakeGitHub, redis_url: str, prefix: str) -> None:
    clock = FakeClock()
    workers = [
        GitHubClients(
            make_settings(GITHUB_TOKEN="ghs_shared", GITHUB_API_URL=fresh_github.url),
            max_wait=0.01,
            limiter=Limiter(RedisLimits(redis_url, prefix=prefix), budget=600, clock=clock),
        )
        for _ in range(2)
    ]

    async def comment(worker: GitHubClients, n: int) -> None:
        await worker.for_installation(None).rest.issues.async_create_comment("octo", "repo", 1, body=f"c{n}")

    async def scenario() -> None:
        for n in range(80):
            await comment(workers[n % 2], n)
        assert clock.slept == []
        await comment(workers[0], 80)
        assert clock.slept == [pytest.approx(60)]  # the other worker's calls counted too

    asyncio.run(scenario())
    assert len(fresh_github.comments) == 81


# ---------------------------------------------------------------- what GitHub tells


def test_the_quota_running_low_spreads_calls_to_the_reset(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=3600, clock=clock)
    reset = clock.now() + 100

    async def scenario() -> None:
        quota = {"x-ratelimit-limit": "5000", "x-ratelimit-reset": str(int(reset))}
        await limiter.after(KEY, answer(200, quota | {"x-ratelimit-remaining": "4000"}))
        await limiter.before(KEY, READ)
        assert clock.slept == []  # plenty left
        await limiter.after(KEY, answer(200, quota | {"x-ratelimit-remaining": "10"}))
        await limiter.after(KEY, answer(200, quota | {"x-ratelimit-remaining": "12"}))  # older, arrived later
        for _ in range(3):
            await limiter.before(KEY, READ)
        assert clock.slept == [pytest.approx(10), pytest.approx(9)]  # 10 left over 100 s, then over 90 s
        await limiter.after(KEY, answer(200, quota | {"x-ratelimit-remaining": "0"}))
        await limiter.before(KEY, READ)
        assert clock.now() == pytest.approx(reset + 1)  # none left: after the reset

    asyncio.run(scenario())


def test_a_rate_limit_without_a_time_pauses_a_minute_doubling(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=3600, clock=clock)

    async def scenario() -> list[float]:
        waits = []
        for status in (429, 429, 200, 429):
            await limiter.after(KEY, answer(status, {}))
            before = clock.now()
            await limiter.before(KEY, READ)
            waits.append(clock.now() - before)
        return waits

    assert asyncio.run(scenario()) == [pytest.approx(60), pytest.approx(120), 0, pytest.approx(60)]


def test_a_plain_403_is_no_rate_limit(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=3600, clock=clock)

    async def scenario() -> None:
        plain = b'{"message": "Resource not accessible by integration"}'
        await limiter.after(KEY, answer(403, {"x-ratelimit-remaining": "4999"}, plain))
        await limiter.after(KEY, answer(403, {}, b'{"message": "You have exceeded a secondary rate limit"}'))
        await limiter.before(KEY, READ)

    asyncio.run(scenario())
    assert clock.slept == [pytest.approx(60)]  # only the second, which says it is one


def test_how_long_a_pause_still_holds_is_read_without_taking_a_call(limits: LimitStore) -> None:
    clock = FakeClock()
    limiter = Limiter(limits, budget=3600, clock=clock)

    async def scenario() -> list[float]:
        left = [await limiter.paused_for(KEY)]  # never paused
        await limiter.after(KEY, answer(429, {"retry-after": "90"}))
        left.append(await limiter.paused_for(KEY))
        clock.advance(60)
        left.append(await limiter.paused_for(KEY))
        left.append(await limiter.paused_for("installation:43"))  # another installation's calls may go
        clock.advance(60)
        left.append(await limiter.paused_for(KEY))
        return left

    assert asyncio.run(scenario()) == [0, pytest.approx(90), pytest.approx(30), 0, 0]
    assert clock.slept == []


def test_a_pause_github_asks_of_one_process_holds_the_others(redis_url: str, prefix: str) -> None:
    clock = FakeClock()
    one, other = (Limiter(RedisLimits(redis_url, prefix=prefix), budget=3600, clock=clock) for _ in range(2))

    async def scenario() -> float:
        await one.after(KEY, answer(403, {"retry-after": "30"}, b'{"message": "secondary rate limit"}'))
        paused = await other.paused_for(KEY)
        await other.before(KEY, READ)
        await other.before("installation:7", READ)  # another installation's quota is its own
        return paused

    assert asyncio.run(scenario()) == pytest.approx(30)
    assert clock.slept == [pytest.approx(30)]


def test_without_redis_a_process_keeps_its_own_figures(prefix: str) -> None:
    clock = FakeClock()
    limiter = Limiter(RedisLimits("redis://127.0.0.1:1/0", prefix=prefix), budget=3600, clock=clock)

    async def scenario() -> None:
        await limiter.after(KEY, answer(429, {"retry-after": "5"}))
        await limiter.before(KEY, READ)

    asyncio.run(scenario())
    assert clock.slept == [pytest.approx(5)]


# ---------------------------------------------------------------- conditional reads


def file_reader(fake: FakeGitHub, **settings: Any) -> GitHubReader:
    clients = GitHubClients(make_settings(GITHUB_TOKEN="ghs_test", GITHUB_API_URL=fake.url, **settings), max_wait=0.01)
    return GitHubReader(clients, installation_id=None)


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_a_config_read_again_unchanged_costs_a_304_and_reuses_the_kept_body(
    fresh_github: FakeGitHub, redis_url: str, shared: bool
) -> None:
    repo = f"octo/config-{uuid.uuid4().hex[:8]}"  # its own cache entries
    settings = {"WAOOAW_REDIS_URL": redis_url} if shared else {}
    config = b"agents:\n  wowvision: on\n"
    fresh_github.files[(repo, "main", ".github/waooaw.yml")] = config
    reader = file_reader(fresh_github, **settings)

    async def read(on: GitHubReader) -> bytes | None:
        return await on.file_at(repo, "main", ".github/waooaw.yml")

    try:
        assert asyncio.run(read(reader)) == config
        assert asyncio.run(read(reader)) == config
        calls = fresh_github.calls("GET", r"/contents/")
        assert [c.status for c in calls] == [200, 304]
        assert "if-none-match" not in calls[0].headers and calls[1].headers["if-none-match"].startswith('W/"')
        if shared:  # another process finds the kept answer in Redis
            assert asyncio.run(read(file_reader(fresh_github, **settings))) == config
            assert fresh_github.calls("GET", r"/contents/")[-1].status == 304
        fresh_github.files[(repo, "main", ".github/waooaw.yml")] = b"agents: {}\n"
        assert asyncio.run(read(reader)) == b"agents: {}\n"  # changed: a full answer
        assert fresh_github.calls("GET", r"/contents/")[-1].status == 200
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*etag:*{repo}*"))
        if keys:
            client.delete(*keys)
        client.close()
