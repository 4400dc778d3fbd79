"""Turn on what a process tells about itself: traces (when configured) and the gauges read from its parts.

Called once by each long-running process: the web app (`create_app`) and `waooaw worker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import metrics, tracing

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.app import Platform


def watch(platform: Platform, app: FastAPI | None = None) -> None:
    settings = platform.settings
    tracing.configure(settings)
    if app is not None:
        tracing.instrument_app(app)
    metrics.show_budgets(settings.llm_repo_daily_budget_usd, settings.report_budget_usd)
    if platform.llm is not None:
        breaker = platform.llm.breaker
        metrics.watch_breaker(lambda: breaker.state)
