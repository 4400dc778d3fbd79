"""structlog set-up: JSON lines in production, readable lines on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, WrappedLogger

from bot import tracing


def configure(level: str = "INFO") -> None:
    renderer = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    # Alembic narrates every migration step at INFO, and httpx every request (GitHub's, in plain text
    # among the JSON lines, three for a `/waooaw help`); users only need to hear of problems.
    for name in ("alembic", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The trace a line was written in, so a log line leads to its trace and back."""
    return {**tracing.ids(), **event}
