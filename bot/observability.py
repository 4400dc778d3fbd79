"""Turn on what a process tells about itself: traces (when configured) and the operator's limits.

Called once by each long-running process: the web app (`create_app`) and `waooaw worker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import metrics, tracing

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.wiring import Platform


def instrument(platform: Platform, app: FastAPI | None = None) -> None:
    settings = platform.settings
    tracing.configure(settings)
    if app is not None:
        tracing.instrument_app(app)
    metrics.show_budgets(
        {
            "repo_daily": settings.llm_repo_daily_budget_usd,
            "installation_daily": settings.llm_installation_daily_budget_usd,
            "installation_monthly": settings.llm_installation_monthly_budget_usd,
            "agent_daily": settings.llm_agent_daily_budget_usd,
            "agent_monthly": settings.llm_agent_monthly_budget_usd,
            "all_daily": settings.report_budget_usd,
        }
    )
