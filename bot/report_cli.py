"""`waooaw report daily`: the day's report as Markdown and charts, and optionally its GitHub issue
(bot/daily_report.py makes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.daily_report import ReportError, run_daily
from bot.settings import command_settings

report_app = typer.Typer(help="Reports: what the agents did, decided and cost.", no_args_is_help=True)


@report_app.command("daily")
def daily(
    day: Annotated[str, typer.Option("--date", help="today, yesterday or YYYY-MM-DD, in WAOOAW_REPORT_TZ.")] = "today",
    repo: Annotated[
        str | None, typer.Option(help="OWNER/NAME: the repository the issue goes to (and its chart links).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Reports directory: files go to OUT/daily/.")] = Path("reports"),
    post: Annotated[
        bool, typer.Option("--post", help="Upsert the day's issue on --repo; close the previous day's.")
    ] = False,
    catch_up: Annotated[
        int, typer.Option(help="Also report the days of the last N missing from OUT/daily.", min=0)
    ] = 0,
) -> None:
    """Write the day's report (Markdown + PNG charts) from the store or the report API; --post opens its issue."""
    from bot.publish import PublishError

    settings = command_settings()
    try:
        run_daily(settings, day, repo, out, post, catch_up)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except PublishError as exc:
        typer.echo(f"error: the report was written but not posted: {exc}", err=True)
        raise typer.Exit(1) from None
