"""The FastAPI app: webhook intake, health, readiness and metrics.

In embedded mode (no WAOOAW_REDIS_URL) its lifespan also runs the worker on the
local bus, so one process does everything; with Redis, workers run apart.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from agents.catalog import default_registry
from agents.context.cache import watch as watch_context_writes
from agents.store.db import Store
from agents.decisions import DecisionCache, decision_cache
from agents.events import Event
from agents.breaker import CircuitBreaker, RedisBreakerState, trip_recorder
from agents.llm import LLMClient
from agents.ports import RepoReader
from agents.registry import Registry
from bot import metrics, observability, webhooks
from bot.api import api_router
from bot.bodies import BodyBudget, read_body
from bot.bus import EventBus, LocalBus
from bot.deliveries import recovery_schedule
from bot.inbox import Inbox, InboxStatus, InboxWriter
from bot.github import GitHubClients, github_clients
from bot.outputs import Publisher, build_publisher
from bot.reader import GitHubReader
from bot.reports_web import api_token_check
from bot.reports_web import router as reports_router
from bot.settings import Settings
from bot.tenancy import TENANCY_EVENTS
from bot.worker import Worker

log = structlog.get_logger(__name__)

WAKE_TABLE_TTL = 5.0  # seconds a read of agent states serves intake
# What intake answers besides 202, as its OpenAPI schema states it (every answer `{"error": "…"}`).
WEBHOOK_REFUSALS: dict[int | str, dict[str, str]] = {
    400: {"description": "Malformed body, or a GitHub header missing."},
    401: {"description": "Bad or missing signature."},
    413: {"description": "Body over 25 MiB."},
    503: {"description": "The delivery could not be recorded: nothing was kept, redeliver it."},
}


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

    async def wanted(self, event: str) -> bool:
        """Whether any active agent may wake on this event name (a static table, no GitHub call).

        Agent states are read from the store at most every few seconds, off the event loop.
        """
        now = time.monotonic()
        if now - self._wake_read_at > WAKE_TABLE_TTL:
            self._wake_names = await run_in_threadpool(self.registry.wake_event_names) | TENANCY_EVENTS
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
        )


def build_platform(
    settings: Settings,
    *,
    bus: EventBus | None = None,
    publisher: Publisher | None = None,
    reader_for: Callable[[Event], RepoReader | None] | None = None,
) -> Platform:
    """`reader_for` stands in for GitHub where there are no credentials (a dry run over a local clone)."""
    store = Store(settings.database_url)
    if settings.redis_url is not None:  # context versions any process writes reach the API's cache
        watch_context_writes(store, settings.redis_url)
    clients = github_clients(settings)  # one token cache for publishing and reading
    if reader_for is None:
        reader_for = (lambda event: GitHubReader(clients, event.installation_id)) if clients else (lambda event: None)
    return Platform(
        settings=settings,
        store=store,
        registry=default_registry(store),
        bus=bus or make_bus(settings),
        publisher=publisher or build_publisher(store, clients),
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


def freeze_startup_heap() -> None:
    """Keep what start-up built out of every later garbage collection.

    Start-up imports hundreds of thousands of long-lived objects (githubkit's models alone
    are a large share), and each full collection walked them all: a pause of 150-200 ms,
    every request in flight waiting on it. Frozen, they are never walked again; only what
    the process makes afterwards is. Called once, by long-running processes, just before they serve.
    """
    gc.collect()
    gc.freeze()


def create_app(platform: Platform, *, secret: str | None, run_worker: bool | None = None) -> FastAPI:
    """`secret` None is insecure dev mode: signatures are not checked (the CLI refuses it unless asked)."""
    run_worker = platform.settings.embedded if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(platform.worker().run(stop)) if run_worker else None
        recovery = recovery_schedule(platform.settings, platform.github, platform.inbox, stop)
        recovering = asyncio.create_task(recovery) if recovery is not None else None
        try:
            yield
        finally:
            stop.set()
            if recovering is not None:  # a run cut short is safe: the next one asks for what is still missing
                recovering.cancel()
                await asyncio.gather(recovering, return_exceptions=True)
            if task is not None:
                await task
            await platform.intake.close()
            await platform.publisher.close()
            await platform.bus.close()

    app = FastAPI(title="WAOOAW", version="0.1.0", lifespan=lifespan)
    app.state.platform = platform
    observability.watch(platform, app)

    @app.post("/webhooks/github", status_code=202, responses=WEBHOOK_REFUSALS)
    async def github_webhook(request: Request) -> Response:
        try:
            async with read_body(request, platform.body_budget, timeout=platform.settings.webhook_read_timeout) as body:
                delivery = _delivery(request, secret, body)
                wanted, is_new = await _record(platform, delivery)
        except webhooks.WebhookRejected as rejected:
            metrics.rejected.labels(str(rejected.status)).inc()
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status, headers=rejected.headers)
        if delivery.event == "ping":
            answer = "pong"
        elif not is_new:
            answer = "duplicate"
        elif wanted:
            await _publish(platform, delivery.delivery_id)
            answer = "queued"
        else:
            answer = "ignored"
        metrics.deliveries.labels(delivery.event, answer).inc()
        return JSONResponse({"delivery": delivery.delivery_id, "status": answer}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "The database or the bus cannot be reached."}})
    async def readyz() -> Response:
        checks = {"database": await run_in_threadpool(_database_ok, platform.store), "bus": await platform.bus.ping()}
        ready = all(checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", response_class=PlainTextResponse)  # the schema states Prometheus's text type
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Routes are matched in order, each costing every request behind it: the webhook first,
    # then the Context API, then the reports people open a few times a day.
    app.include_router(api_router(platform.settings, platform.store))
    app.include_router(reports_router)
    if not platform.settings.reports_token:  # WAOOAW_REPORTS_TOKEN, when set, is the one report token
        app.state.report_token_check = api_token_check(platform.store)

    return app


async def _publish(platform: Platform, delivery_id: str) -> None:
    """Hand the recorded delivery to the bus. If the bus is down the delivery is still
    safe in the inbox: a worker's recovery sweep publishes it later, so GitHub gets its 202."""
    try:
        await platform.bus.publish(delivery_id)
    except Exception:  # noqa: BLE001
        log.exception("webhook.publish_failed", delivery=delivery_id)


def _delivery(request: Request, secret: str | None, body: bytes) -> webhooks.Delivery:
    webhooks.verify_signature(secret, body, request.headers.get("x-hub-signature-256"))
    return webhooks.parse(
        body, event=request.headers.get("x-github-event"), delivery_id=request.headers.get("x-github-delivery")
    )


async def _record(platform: Platform, delivery: webhooks.Delivery) -> tuple[bool, bool]:
    """Whether an agent may want the delivery, and whether it is new, once its row is committed.

    Not recorded means not accepted: 503, so that GitHub shows the delivery as failed and it
    can be redelivered, rather than a 202 for a delivery that would then be lost.
    """
    try:
        wanted = delivery.event != "ping" and await platform.wanted(delivery.event)
        is_new = await platform.intake.record(delivery, InboxStatus.QUEUED if wanted else InboxStatus.IGNORED)
    except Exception:  # noqa: BLE001 - whatever failed, the delivery is not safe: GitHub must see a failure
        log.exception("webhook.not_recorded", delivery=delivery.delivery_id, github_event=delivery.event)
        raise webhooks.unavailable(
            "the delivery was not recorded (the database is out of reach or refused the write): "
            "redeliver it once the service is back"
        ) from None
    return wanted, is_new


def _database_ok(store: Store) -> bool:
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - readiness reports, it does not raise
        return False
