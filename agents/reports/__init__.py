"""Daily reports: what every agent did, decided and cost, from the store.

    report = build_daily_report(store, date(2026, 3, 10), "Europe/Paris")
    charts = render_charts(report)                       # {"decisions": PNG, "cost": PNG}
    text = render_markdown(report, image_links(report))  # the Markdown, images beside it

`queries` aggregates (SQL only; `coe_queries` the CoE's part, `scoped` whose data, `days` the
day's bounds), `model` is the report's data (also its JSON), `charts` draws the PNGs,
`markdown` writes the text, `daily` makes the output intents.
"""

from agents.reports.charts import CHARTS, chart_filename, render_charts
from agents.reports.daily import LABEL, close_intent, daily_key, daily_title, markdown_path, post_intent, report_files
from agents.reports.days import ReportDay, parse_day
from agents.reports.markdown import image_links, render_markdown
from agents.reports.model import DailyReport
from agents.reports.queries import build_daily_report, first_day

__all__ = [
    "CHARTS",
    "LABEL",
    "DailyReport",
    "ReportDay",
    "build_daily_report",
    "chart_filename",
    "close_intent",
    "daily_key",
    "daily_title",
    "first_day",
    "image_links",
    "markdown_path",
    "parse_day",
    "post_intent",
    "render_charts",
    "render_markdown",
    "report_files",
]
