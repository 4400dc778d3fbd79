"""OpenTelemetry traces: from the webhook through the bus to each agent run, decision and HTTP call.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set;
then spans go there over OTLP (HTTP), and the SDK honours the other standard `OTEL_*`
variables (headers, sampler, resource attributes).
Off, every span below is the API's no-op and costs next to nothing.

The trace context crosses the bus inside the message (W3C `traceparent`, or whatever
`OTEL_PROPAGATORS` names), so a worker on another machine continues the webhook's trace.
GitHub and Anthropic calls are spans of the httpx instrumentation: both SDKs use httpx.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context, propagate, trace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from bot.settings import Settings

TRACER_NAME = "waooaw"
# Probes and scrapes are no story worth telling.
UNTRACED_URLS = "healthz,readyz,metrics"

_provider: TracerProvider | None = None


def configure(settings: Settings) -> None:
    """Once per process: send traces to the OTLP endpoint, when one is set."""
    endpoint = settings.otel_traces_url
    if _provider is not None or endpoint is None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The endpoint comes from the settings, which also read .env; headers, timeout and the rest the exporter reads.
    start(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), service_name=settings.otel_service_name)


def start(processor: SpanProcessor, *, service_name: str = "waooaw") -> TracerProvider:
    """Make traces real for this process: spans go to `processor`, httpx calls become spans."""
    global _provider
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if _provider is not None:
        _provider.add_span_processor(processor)
        return _provider
    _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    _provider.add_span_processor(processor)
    trace.set_tracer_provider(_provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=_provider)
    return _provider


def enabled() -> bool:
    return _provider is not None


def instrument_app(app: FastAPI) -> None:
    """A server span for each request the app takes: the root of a webhook delivery's trace."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls=UNTRACED_URLS)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def carrier() -> dict[str, str]:
    """The current trace context, as the fields a bus message carries (empty when not tracing)."""
    fields: dict[str, str] = {}
    propagate.inject(fields)
    return fields


@contextmanager
def continued(fields: Mapping[str, str], name: str, **attributes: str | int) -> Iterator[trace.Span]:
    """A span continuing the trace whose context a bus message carried."""
    parent = propagate.extract(dict(fields)) if fields else context.Context()
    with tracer().start_as_current_span(name, context=parent, kind=trace.SpanKind.CONSUMER) as span:
        span.set_attributes(attributes)
        yield span


def ids() -> dict[str, str]:
    """The current trace and span ids, as log lines carry them (none outside a recorded span)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": format(span_context.trace_id, "032x"), "span_id": format(span_context.span_id, "016x")}
