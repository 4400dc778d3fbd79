"""Traces, metrics and log lines of a real delivery: the app in-process on the real store, the
fake GitHub on loopback, spans caught by the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import structlog
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agents.ledger import Entry, LedgerOwner, record_entries
from bot import logging as waooaw_logging
from bot import tracing
from bot.app import create_app
from bot.bus import BusMessage, RedisStreamBus
from bot.inbox import InboxStatus
from tests.conftest import TEST_SECRET, load_payload
from tests.helpers import github_platform, signed_headers

HELP_MARKER = "<!-- waooaw:concierge:comment:help:"
GITHUB_TOKEN = "ghs_test"  # what tests.helpers.github_platform authenticates with


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = tracing.start(SimpleSpanProcessor(spans))
    yield spans
    # The process's provider cannot be replaced; what follows this module records nothing more.
    HTTPXClientInstrumentor().uninstrument()
    spans.shutdown()
    provider.shutdown()
    tracing._provider = None


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The JSON lines bot/logging.py writes, as production writes them."""
    stream = io.StringIO()
    saved = structlog.get_config()
    monkeypatch.setattr("sys.stderr", stream)
    waooaw_logging.configure("INFO")
    yield stream
    structlog.configure(**saved)


def deliver_help(pg_store: Any, fake: Any) -> tuple[TestClient, str]:
    """Deliver `/waooaw help` to the app (embedded worker) and wait until its comment is on the fake GitHub."""
    platform = github_platform(pg_store, fake.url)
    client = TestClient(create_app(platform, secret=TEST_SECRET, run_worker=True))
    payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body="/waooaw help")
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())
    with client:
        answer = client.post("/webhooks/github", content=body, headers=signed_headers(body, "issue_comment", delivery))
        assert answer.json()["status"] == "queued"
        deadline = time.monotonic() + 30
        while getattr(platform.inbox.get(delivery), "status", None) != InboxStatus.DONE:
            assert time.monotonic() < deadline, "the delivery was never done"
            time.sleep(0.05)
        assert any(HELP_MARKER in (c["body"] or "") for c in fake.comments.values())
        metrics_text = client.get("/metrics").text
    client.metrics_text = metrics_text
    return client, delivery


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.name)
    return chain


def test_a_trace_links_the_webhook_through_the_bus_to_the_agent_and_its_github_calls(pg_store, fresh_github, spans):
    _, delivery = deliver_help(pg_store, fresh_github)
    finished = list(spans.get_finished_spans())
    [webhook] = [s for s in finished if s.kind == SpanKind.SERVER and "/webhooks/github" in s.name]
    [handled] = [s for s in named(finished, "waooaw.delivery") if s.attributes["waooaw.delivery"] == delivery]
    [agent] = [s for s in named(finished, "waooaw.agent") if s.parent and s.parent.span_id == handled.context.span_id]
    assert handled.context.trace_id == webhook.context.trace_id, "the worker continues the webhook's trace"
    assert handled.parent is not None and handled.parent.trace_id == webhook.context.trace_id
    assert agent.attributes["waooaw.agent"] == "concierge"
    by_id = {s.context.span_id: s for s in finished if s.context.trace_id == webhook.context.trace_id}
    github_calls = [
        s
        for s in by_id.values()
        if s.kind == SpanKind.CLIENT
        and s.attributes.get("http.request.method", s.attributes.get("http.method")) == "POST"
    ]
    assert github_calls, "the comment's POST to GitHub is a span of the same trace"
    for call in github_calls:
        assert "waooaw.agent" in ancestors(call, by_id) and ancestors(call, by_id)[-1] == webhook.name


def test_metrics_name_events_agents_and_routes_and_never_a_repository(pg_store, fresh_github, spans):
    client, _ = deliver_help(pg_store, fresh_github)
    text = client.metrics_text
    assert 'waooaw_deliveries_total{event="issue_comment",status="queued"}' in text
    assert 'waooaw_agent_runs_total{agent="concierge",status="ok"}' in text
    assert 'waooaw_wake_latency_seconds_count{agent="concierge"}' in text
    assert 'waooaw_github_requests_total{method="POST",route="repos/issues",status="201"}' in text
    assert "waooaw_bus_waiting " in text and 'waooaw_llm_budget_usd{scope="repo_daily"}' in text
    for content in ("Codertocat", "Hello-World", "/waooaw help"):
        assert content not in text, f"/metrics carries {content!r}"


def test_log_lines_carry_the_ids_and_no_secret(pg_store, fresh_github, spans, log_lines):
    _, delivery = deliver_help(pg_store, fresh_github)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.startswith("{")]
    wanted = ("worker.agent_finished", delivery)
    [finished] = [line for line in lines if (line["event"], line.get("delivery")) == wanted]
    assert finished["installation"] == 1 and finished["repo"] == "Codertocat/Hello-World"
    assert finished["agent"] == "concierge" and finished["status"] == "ok"
    [handled] = [
        s
        for s in named(list(spans.get_finished_spans()), "waooaw.agent")
        if s.attributes["waooaw.agent"] == "concierge"
    ]
    assert finished["trace_id"] == format(handled.context.trace_id, "032x")
    assert TEST_SECRET not in log_lines.getvalue() and GITHUB_TOKEN not in log_lines.getvalue()


def test_the_redis_bus_carries_the_trace_context_to_the_consumer(redis_url, spans):
    stream = f"waooaw:test-trace:{uuid.uuid4().hex[:8]}"

    async def scenario() -> BusMessage:
        bus = RedisStreamBus(redis_url, stream=stream, block_ms=100)
        seen: asyncio.Queue[BusMessage] = asyncio.Queue()

        async def handler(message: BusMessage) -> None:
            await seen.put(message)

        with tracing.tracer().start_as_current_span("publisher"):
            await bus.publish("d-traced")
        stop = asyncio.Event()
        consuming = asyncio.create_task(bus.consume(handler, lambda *_: asyncio.sleep(0), stop))
        message = await asyncio.wait_for(seen.get(), 15)
        stop.set()
        await asyncio.wait_for(consuming, 15)
        await bus.close()
        return message

    try:
        message = asyncio.run(scenario())
    finally:
        redis.Redis.from_url(redis_url).delete(stream, f"{stream}:dead", f"{stream}:errors")
    [publisher] = named(list(spans.get_finished_spans()), "publisher")
    assert message.delivery_id == "d-traced"
    assert message.trace["traceparent"].split("-")[1] == format(publisher.context.trace_id, "032x")


def test_a_ledger_row_is_a_decision_span_of_the_current_trace_as_long_as_it_took(pg_store, spans):
    entry = Entry("wowvision", "design", "llm", "settled", latency_ms=250.0, tokens_in=900, cost_usd=0.01)
    with tracing.tracer().start_as_current_span("waooaw.agent") as agent:
        record_entries(pg_store, LedgerOwner(repo="Codertocat/Hello-World"), [entry])
    [decision] = named(list(spans.get_finished_spans()), "waooaw.decision")
    assert decision.parent is not None and decision.parent.span_id == agent.get_span_context().span_id
    assert (decision.attributes["waooaw.rung"], decision.attributes["waooaw.tokens_in"]) == ("llm", 900)
    assert decision.end_time - decision.start_time == 250_000_000


OTLP_SCRIPT = """
from bot.settings import Settings
from bot import tracing
tracing.configure(Settings())
print("enabled:", tracing.enabled())
if tracing.enabled():
    with tracing.tracer().start_as_current_span("waooaw.probe"):
        pass
    tracing._provider.shutdown()  # flushes the batch
"""


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None])
def test_traces_go_over_otlp_to_the_endpoint_set_and_are_off_without_one(tmp_path, variable):
    received: list[tuple[str, str]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WAOOAW_", "GITHUB_", "ANTHROPIC_"))}
    if variable is not None:
        env[variable] = url if variable == "OTEL_EXPORTER_OTLP_ENDPOINT" else f"{url}/v1/traces"
    try:
        done = subprocess.run(
            [sys.executable, "-c", OTLP_SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert f"enabled: {variable is not None}" in done.stdout
    assert received == ([("/v1/traces", "application/x-protobuf")] if variable else [])
