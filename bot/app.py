"""The FastAPI app: webhook intake, health, readiness and metrics (the platform it serves is built in bot/wiring.py).

In embedded mode (no WAOOAW_REDIS_URL) its lifespan also runs the worker on the
local bus, so one process does everything; with Redis, workers run apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from agents.store.db import Store
from bot import metrics, observability, webhooks
from bot.api import api_router
from bot.bodies import read_body
from bot.deliveries import recovery_schedule
from bot.inbox import InboxStatus
from bot.reports_web import api_token_check
from bot.reports_web import router as reports_router
from bot.reputation_jobs import curator_schedule, reactions_schedule
from bot.timers import timers_schedule
from bot.wiring import Platform

log = structlog.get_logger(__name__)

# What intake answers besides 202, as its OpenAPI schema states it (every answer `{"error": "…"}`).
WEBHOOK_REFUSALS: dict[int | str, dict[str, str]] = {
    400: {"description": "Malformed body, or a GitHub header missing."},
    401: {"description": "Bad or missing signature."},
    413: {"description": "Body over 25 MiB."},
    503: {"description": "The delivery could not be recorded: nothing was kept, redeliver it."},
}


def create_app(platform: Platform, *, secret: str | None, run_worker: bool | None = None) -> FastAPI:
    """`secret` None is insecure dev mode: signatures are not checked (the CLI refuses it unless asked)."""
    run_worker = platform.settings.embedded if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(platform.worker().run(stop)) if run_worker else None
        schedules = (
            recovery_schedule(platform.settings, platform.github, platform.inbox, stop),
            reactions_schedule(platform.settings, platform.github, platform.store, stop),
            curator_schedule(
                platform.settings, platform.github, platform.store, platform.registry, platform.publisher, stop
            ),
            timers_schedule(platform.settings, platform.store, platform.registry, platform.bus, stop),
        )
        scheduled = [asyncio.create_task(job) for job in schedules if job is not None]
        try:
            yield
        finally:
            stop.set()
            for running in scheduled:  # a run cut short is safe: the next one does what is still to do
                running.cancel()
            await asyncio.gather(*scheduled, return_exceptions=True)
            if task is not None:
                await task
            await platform.intake.close()
            await platform.publisher.close()
            await platform.bus.close()

    app = FastAPI(title="WAOOAW", version="0.1.0", lifespan=lifespan)
    app.state.platform = platform
    observability.instrument(platform, app)

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
    except Exception:
        log.exception("webhook.publish_failed", delivery=delivery_id)


def _delivery(request: Request, secret: str | None, body: bytes) -> webhooks.Delivery:
    webhooks.verify_signature(secret, body, request.headers.get("x-hub-signature-256"))
    return webhooks.parse_delivery(
        body, event=request.headers.get("x-github-event"), delivery_id=request.headers.get("x-github-delivery")
    )


async def _record(platform: Platform, delivery: webhooks.Delivery) -> tuple[bool, bool]:
    """Whether an agent may want the delivery, and whether it is new, once its row is committed.

    Not recorded means not accepted: 503, so that GitHub shows the delivery as failed and it
    can be redelivered, rather than a 202 for a delivery that would then be lost.
    """
    try:
        wanted = delivery.event != "ping" and await platform.wanted(delivery.event, delivery.action)
        is_new = await platform.intake.record(delivery, InboxStatus.QUEUED if wanted else InboxStatus.IGNORED)
    except Exception:  # whatever failed, the delivery is not safe: GitHub must see a failure
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
