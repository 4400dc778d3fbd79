"""The daily report as output intents: its files, and one GitHub issue per day.

The edge publishes a `Report` with `repo` as one issue upserted by its marker
(`<!-- waooaw:reports:report:daily-YYYY-MM-DD -->`), so a rerun edits the day's
issue and never opens a second one; the previous day's issue is the same intent with
`state="closed"`.
"""

from __future__ import annotations

from datetime import date

from agents.outputs import Report
from agents.reports.charts import chart_filename
from agents.reports.model import DailyReport

REPORT_AGENT = "reports"  # the name the report's outputs are published under (their marker)
LABEL = "waooaw-report"


def daily_key(day: date) -> str:
    return f"daily-{day.isoformat()}"


def daily_title(day: date) -> str:
    return f"WAOOAW daily report — {day.isoformat()}"


def markdown_path(day: date) -> str:
    """Where a day's report lives under the reports directory."""
    return f"daily/{day.isoformat()}.md"


def report_files(report: DailyReport, markdown: str, charts: dict[str, bytes]) -> dict[str, bytes]:
    files = {markdown_path(report.date): markdown.encode()}
    for chart, png in charts.items():
        files[f"daily/{chart_filename(report, chart)}"] = png
    return files


def post_intent(report: DailyReport, markdown: str, repo: str | None, files: dict[str, bytes] | None = None) -> Report:
    """The day's report: its files, and (with `repo`) its issue, open."""
    return Report(
        title=daily_title(report.date),
        markdown=markdown,
        key=daily_key(report.date),
        repo=repo,
        labels=(LABEL,),
        files=files or {},
    )


def close_intent(report: DailyReport, markdown: str, repo: str) -> Report:
    """An earlier day's issue, closed (with its body brought up to date)."""
    return Report(
        title=daily_title(report.date),
        markdown=markdown,
        key=daily_key(report.date),
        repo=repo,
        labels=(LABEL,),
        state="closed",
    )
