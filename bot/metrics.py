"""Prometheus metrics of the edge: intake, the bus, agent runs and GitHub calls.

Labels carry event, agent and route-class names, statuses and codes only: never a repository,
a path or anything else a tenant wrote (DESIGN.md: /metrics carries no repository content).
The decision ladder's own (decisions, tokens, cost) are in agents/telemetry.py.

Each process serves its own figures: the web app on GET /metrics, `waooaw worker` on
WAOOAW_WORKER_METRICS_PORT; Prometheus scrapes each and sums them.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from bot.ratelimit import read_ratelimit

if TYPE_CHECKING:
    from agents.breaker import CircuitBreaker
    from bot.bus import EventBus

log = structlog.get_logger(__name__)

SHARED_STATE_INTERVAL = 15.0  # seconds between reads of the bus's and the breaker's state: about one scrape

deliveries = Counter("waooaw_deliveries_total", "Webhook deliveries by outcome", ["event", "status"])
rejected = Counter("waooaw_deliveries_rejected_total", "Webhook deliveries refused", ["code"])
agent_runs = Counter("waooaw_agent_runs_total", "Agent runs by outcome", ["agent", "status"])
agent_run_seconds = Histogram("waooaw_agent_run_seconds", "Agent run duration", ["agent"])
wake_latency = Histogram(
    "waooaw_wake_latency_seconds",
    "From a delivery's arrival to an agent starting on it",
    ["agent"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
dead_letters = Counter("waooaw_dead_letters_total", "Deliveries given up after max deliveries")

bus_waiting = Gauge("waooaw_bus_waiting", "Messages on the bus no worker has taken yet (the consumer lag)")
bus_pending = Gauge("waooaw_bus_pending", "Messages a worker holds and has not acked")
bus_dead_letters = Gauge("waooaw_bus_dead_letters", "Dead letters the bus keeps")
bus_oldest_seconds = Gauge("waooaw_bus_oldest_seconds", "Age of the oldest message waiting or pending")

github_requests = Counter(
    "waooaw_github_requests_total", "GitHub API calls by route class and HTTP status", ["route", "method", "status"]
)
github_ratelimit_remaining = Gauge(
    "waooaw_github_ratelimit_remaining", "Requests left in GitHub's rate-limit window, as last answered", ["resource"]
)
llm_breaker_state = Gauge("waooaw_llm_breaker_state", "The LLM circuit breaker: 0 closed, 1 half open, 2 open")
llm_budget_usd = Gauge("waooaw_llm_budget_usd", "LLM budgets in USD", ["scope"])

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

# Route classes: GitHub's own route names, never an owner, repository, path or ref.
_REPO_ROUTES = frozenset(
    {
        "actions",
        "branches",
        "check-runs",
        "check-suites",
        "collaborators",
        "commits",
        "compare",
        "contents",
        "dispatches",
        "git",
        "hooks",
        "installation",
        "issues",
        "labels",
        "pulls",
        "readme",
        "statuses",
    }
)
_TOP_ROUTES = frozenset({"app", "graphql", "installation", "meta", "orgs", "rate_limit", "search", "user", "users"})
_RESOURCE = re.compile(r"[a-z_]{1,32}")


def route_class(path: str) -> str:
    """`repos/pulls` for /repos/{owner}/{repo}/pulls/…, `app` for /app/…; `other` for the rest."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v3"]:  # GitHub Enterprise Server's prefix
        parts = parts[2:]
    if parts[:1] == ["repos"]:
        return f"repos/{parts[3]}" if len(parts) > 3 and parts[3] in _REPO_ROUTES else "repos"
    return parts[0] if parts and parts[0] in _TOP_ROUTES else "other"


def count_github_response(response: httpx.Response) -> None:
    request = response.request
    github_requests.labels(route_class(request.url.path), request.method, str(response.status_code)).inc()
    told = read_ratelimit(response.headers)
    if told.remaining is not None and _RESOURCE.fullmatch(told.resource):
        github_ratelimit_remaining.labels(told.resource).set(told.remaining)


async def count_github_response_async(response: httpx.Response) -> None:
    count_github_response(response)


# githubkit's clients take these as httpx event hooks (bot/github.py).
GITHUB_HOOKS = {"response": [count_github_response]}


def with_github_hooks(hooks: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """An async client's event hooks, and ours after them."""
    return {**hooks, "response": [*hooks.get("response", []), count_github_response_async]}


def observe_wake(agent: str, received_at: datetime | None) -> None:
    if received_at is None:
        return
    if received_at.tzinfo is None:  # SQLite hands back the UTC time without its zone
        received_at = received_at.replace(tzinfo=UTC)
    wake_latency.labels(agent).observe(max((datetime.now(UTC) - received_at).total_seconds(), 0.0))


def show_budgets(limits: dict[str, float | None]) -> None:
    """The operator's LLM limits by scope (`repo_daily`, `installation_monthly`, …); an unset one is no series."""
    for scope, usd in limits.items():
        if usd is not None:
            llm_budget_usd.labels(scope).set(usd)


async def read_shared_state(bus: EventBus, breaker: CircuitBreaker | None) -> None:
    """Set the gauges of what every process shares: the bus, and the breaker (in Redis when there is one)."""
    stats = await bus.stats()
    bus_waiting.set(stats.waiting)
    bus_pending.set(stats.pending)
    bus_dead_letters.set(stats.dead_letters)
    bus_oldest_seconds.set(stats.oldest_age)
    if breaker is not None:
        llm_breaker_state.set(BREAKER_STATES[await breaker.state()])


async def follow(
    bus: EventBus, breaker: CircuitBreaker | None, stop: asyncio.Event, interval: float = SHARED_STATE_INTERVAL
) -> None:
    """Keep the shared gauges current until `stop` (a period, not a poll for work)."""
    while not stop.is_set():
        try:
            await read_shared_state(bus, breaker)
        except Exception as exc:  # noqa: BLE001 - a missed reading is taken again next period
            log.warning("metrics.shared_state_failed", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass


def serve(port: int) -> None:
    """Serve /metrics from this process on `port` (a worker's; the web app has its own route)."""
    if not port:
        return
    try:
        start_http_server(port)
    except OSError as exc:  # another worker on this machine has the port: work on, unscraped, and say so
        log.error("metrics.port_unavailable", port=port, error=repr(exc), hint="set WAOOAW_WORKER_METRICS_PORT")
        return
    log.info("metrics.serving", port=port)
