"""What a process is built of: `serve`, `worker` and every command build theirs here.

The store, the bus, the GitHub clients, the publisher, the registry, the model and the
context client are each made in one place, from the settings, so a process started
one way or another gets the same parts.
"""

from __future__ import annotations

import gc
import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from agents.breaker import CircuitBreaker, RedisBreakerState, trip_recorder
from agents.catalog import default_registry
from agents.context.cache import watch as watch_context_writes
from agents.context.client import ContextClient, DbContextClient, HttpContextClient
from agents.decisions import DecisionCache, decision_cache
from agents.events import Event
from agents.llm import LLMClient
from agents.messages import EVENT as MESSAGE_EVENT
from agents.ports import RepoReader
from agents.registry import Registry
from agents.store.db import Store
from agents.tokens import Grant
from bot import tenancy
from bot.bodies import BodyBudget
from bot.bus import EventBus, LocalBus
from bot.github import GitHubClients, github_clients
from bot.inbox import Inbox, InboxWriter
from bot.publish import DryRunPublisher, GitHubPublisher, Publisher
from bot.reader import GitHubReader
from bot.settings import Settings
from bot.timers import EVENT as TIMER_EVENT
from bot.usage import UsageError
from bot.worker import Worker

WAKE_TABLE_TTL = 5.0  # seconds a read of agent states serves intake


# Only the edge makes agents' messages (bot/messages.py) and timer events (bot/timers.py):
# GitHub sends neither, and a webhook of either name is ignored.
OWN_EVENTS = frozenset({MESSAGE_EVENT, TIMER_EVENT})


@dataclass
class Platform:
    """Everything one process needs; built once, shared by the routes and the worker."""

    settings: Settings
    store: Store
    registry: Registry
    bus: EventBus
    publisher: Publisher
    # A RepoReader for the event's installation, or None without GitHub credentials.
    reader_for: Callable[[Event], RepoReader | None] = lambda event: None
    llm: LLMClient | None = None  # None without ANTHROPIC_API_KEY: the LLM rung is off and says so
    decision_cache: DecisionCache | None = None
    github: GitHubClients | None = None  # None without GitHub credentials
    inbox: Inbox = field(init=False)
    intake: InboxWriter = field(init=False)
    body_budget: BodyBudget = field(init=False)  # webhook bodies held at once, across requests
    _wake_names: frozenset[str] = frozenset()
    _wake_read_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.inbox = Inbox(self.store)
        self.intake = InboxWriter(self.inbox)
        self.body_budget = BodyBudget(self.settings.webhook_bytes_in_flight)

    async def wanted(self, event: str, action: str | None) -> bool:
        """Whether any active agent may wake on this event name, or tenancy keeps something from the
        delivery (a static table, no GitHub call).

        Agent states are read from the store at most every few seconds, off the event loop.
        """
        if tenancy.handles(event, action):
            return True
        now = time.monotonic()
        if now - self._wake_read_at > WAKE_TABLE_TTL:
            self._wake_names = await run_in_threadpool(self.registry.wake_event_names) - OWN_EVENTS
            self._wake_read_at = now
        return event in self._wake_names

    def worker(self) -> Worker:
        return Worker(
            settings=self.settings,
            store=self.store,
            registry=self.registry,
            bus=self.bus,
            publisher=self.publisher,
            reader_for=self.reader_for,
            llm=self.llm,
            decision_cache=self.decision_cache,
            github=self.github,
        )


def build_platform(
    settings: Settings,
    *,
    bus: EventBus | None = None,
    publisher: Publisher | None = None,
    reader_for: Callable[[Event], RepoReader | None] | None = None,
) -> Platform:
    """`reader_for` stands in for GitHub where there are no credentials (a dry run over a local clone)."""
    store = watched_store(settings)
    clients = github_clients(settings)  # one token cache for publishing and reading
    if reader_for is None:
        reader_for = (lambda event: GitHubReader(clients, event.installation_id)) if clients else (lambda event: None)
    return Platform(
        settings=settings,
        store=store,
        registry=default_registry(store, spec_dirs=settings.agent_specs),
        bus=bus or make_bus(settings),
        publisher=publisher or make_publisher(store, clients),
        reader_for=reader_for,
        llm=make_llm(settings, store),
        decision_cache=decision_cache(store, settings.redis_url, shares_public=settings.decision_cache_shared),
        github=clients,
    )


def make_llm(settings: Settings, store: Store | None = None) -> LLMClient | None:
    """Claude, behind a breaker shared through Redis (when there is one) whose trips go to `store`."""
    if settings.anthropic_api_key is None:
        return None
    breaker = CircuitBreaker(
        settings.llm_breaker_threshold,
        settings.llm_breaker_cooldown,
        state=RedisBreakerState.from_url(settings.redis_url) if settings.redis_url is not None else None,
        on_trip=trip_recorder(store) if store is not None else None,
    )
    return LLMClient(
        settings.anthropic_api_key.get_secret_value(),
        settings.llm_model,
        base_url=settings.anthropic_base_url,
        max_retries=settings.llm_max_retries,
        breaker=breaker,
    )


def make_bus(settings: Settings) -> EventBus:
    if settings.redis_url is None:
        return LocalBus(max_deliveries=settings.bus_max_deliveries, concurrency=settings.worker_concurrency)
    from bot.bus import RedisStreamBus

    return RedisStreamBus(
        settings.redis_url,
        stream=settings.bus_stream,
        visibility_timeout=settings.bus_visibility_timeout,
        max_deliveries=settings.bus_max_deliveries,
        concurrency=settings.worker_concurrency,
    )


def make_publisher(store: Store | None, clients: GitHubClients | None) -> Publisher:
    """GitHubPublisher with credentials (clients), remembering what it published in `store`;
    DryRunPublisher without any."""
    if clients is None:
        return DryRunPublisher()
    if store is None:
        raise ValueError("publishing to GitHub needs a store to remember what was published")
    return GitHubPublisher(store, clients)


def watched_store(settings: Settings) -> Store:
    """The store, publishing the context versions it writes to the API's cache when there is Redis."""
    store = Store(settings.database_url)
    if settings.redis_url is not None:
        watch_context_writes(store, settings.redis_url)
    return store


def open_store(settings: Settings) -> Store:
    """The store, migrated, publishing what it writes to the API's cache when there is Redis."""
    store = watched_store(settings)
    store.upgrade()
    return store


def cli_actor() -> str:
    """Who a command acts as, in the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


def open_context_client(
    settings: Settings,
    *,
    installation_id: int | None = None,
    job_id: str | None = None,
    read_only: bool = False,
    actor: str = "app",
    store: Store | None = None,
) -> ContextClient:
    """Over the API with WAOOAW_API_URL + WAOOAW_API_TOKEN, else on the store for `installation_id`."""
    if settings.api_url is not None:
        token = settings.api_token.get_secret_value().strip() if settings.api_token is not None else ""
        if not token:
            raise UsageError(
                "WAOOAW_API_URL is set but WAOOAW_API_TOKEN is not: create one with `waooaw tokens create`"
            )
        return HttpContextClient(settings.api_url, token)
    if installation_id is None:
        raise UsageError("which installation? pass --installation (or set WAOOAW_API_URL and WAOOAW_API_TOKEN)")
    return DbContextClient(
        store or open_store(settings), Grant(installation_id, job_id, read_only, actor), budgets=settings.llm_budgets
    )


def freeze_startup_heap() -> None:
    """Keep what start-up built out of every later garbage collection.

    Start-up imports hundreds of thousands of long-lived objects (githubkit's models alone
    are a large share), and each full collection walked them all: a pause of 150-200 ms,
    every request in flight waiting on it. Frozen, they are never walked again; only what
    the process makes afterwards is. Called once, by long-running processes, just before they serve.
    """
    gc.collect()
    gc.freeze()
