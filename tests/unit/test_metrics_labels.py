"""The labels bot/metrics.py derives: GitHub's route classes name no repository, the breaker's state reads live."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY

from agents.breaker import CircuitBreaker
from bot import metrics
from bot.bus import LocalBus


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/repos/Codertocat/Hello-World/pulls/7/reviews", "repos/pulls"),
        ("/repos/Codertocat/Hello-World/contents/secret/plans.md", "repos/contents"),
        ("/api/v3/repos/octo-org/octo-repo/check-runs", "repos/check-runs"),
        ("/repos/Codertocat/Hello-World/made-up-route", "repos"),
        ("/repos/Codertocat/Hello-World", "repos"),
        ("/app/installations/1/access_tokens", "app"),
        ("/graphql", "graphql"),
        ("/Codertocat/Hello-World", "other"),
        ("/", "other"),
    ],
)
def test_a_route_class_is_githubs_route_name_never_an_owner_repository_or_path(path, route):
    assert metrics.route_class(path) == route


def test_a_github_answer_counts_its_route_and_status_and_keeps_the_rate_limit_left():
    request = httpx.Request("POST", "https://api.github.com/repos/Codertocat/Hello-World/issues/1/comments")
    labels = {"route": "repos/issues", "method": "POST", "status": "403"}
    before = REGISTRY.get_sample_value("waooaw_github_requests_total", labels) or 0.0
    headers = {"x-ratelimit-remaining": "41", "x-ratelimit-resource": "core"}
    metrics.count_github_response(httpx.Response(403, headers=headers, request=request))
    assert REGISTRY.get_sample_value("waooaw_github_requests_total", labels) == before + 1
    assert REGISTRY.get_sample_value("waooaw_github_ratelimit_remaining", {"resource": "core"}) == 41
    odd = {"x-ratelimit-remaining": "7", "x-ratelimit-resource": "Codertocat/Hello-World"}
    metrics.count_github_response(httpx.Response(200, headers=odd, request=request))
    odd_labels = {"resource": "Codertocat/Hello-World"}
    assert REGISTRY.get_sample_value("waooaw_github_ratelimit_remaining", odd_labels) is None


def test_the_shared_gauges_read_the_bus_and_the_breaker():
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=lambda: now[0])

    def state_read() -> float | None:
        asyncio.run(metrics.read_shared_state(LocalBus(), breaker))
        return REGISTRY.get_sample_value("waooaw_llm_breaker_state")

    assert state_read() == 0
    asyncio.run(fail_twice(breaker))
    assert state_read() == 2
    now[0] = 61.0
    assert state_read() == 1
    assert REGISTRY.get_sample_value("waooaw_bus_waiting") == 0


async def fail_twice(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        assert await breaker.admit() is None
        await breaker.failed()
