"""The day's report as Markdown and charts, and optionally its GitHub issue (what `waooaw report daily` does).

Where the data comes from: the app's report API when WAOOAW_API_URL and
WAOOAW_API_TOKEN are both set (GET /api/v1/reports/daily/{date}), else the store at
WAOOAW_DATABASE_URL. Files go to `<out>/daily/YYYY-MM-DD.md` and
`<out>/daily/YYYY-MM-DD-{decisions,cost}.png`. `--post` upserts the day's issue
(label `waooaw-report`) and closes the previous day's; `--catch-up N` also reports the
days of the last N that are missing from `<out>/daily` after the first report there,
oldest first, so a late or skipped scheduled run leaves no gap.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import typer

from bot.files import write_files
from bot.settings import Settings

if TYPE_CHECKING:
    from agents.reports import DailyReport
    from agents.store.db import Store
    from bot.publish import Publisher


class ReportError(Exception):
    """The report could not be made; the message says what to fix."""


class ReportSource(Protocol):
    name: str

    def daily(self, day: date) -> DailyReport: ...


class StoreSource:
    """Aggregates in the store itself (WAOOAW_DATABASE_URL)."""

    def __init__(self, store: Store, zone: ZoneInfo, budget_usd: float | None) -> None:
        self.store, self.zone, self.budget_usd = store, zone, budget_usd
        self.name = f"the store at {store.engine.url.render_as_string(hide_password=True)}"

    def daily(self, day: date) -> DailyReport:
        from sqlalchemy.exc import DBAPIError

        from agents.reports import build_daily_report

        try:
            return build_daily_report(self.store, day, self.zone, budget_usd=self.budget_usd)
        except DBAPIError as exc:
            raise ReportError(
                f"cannot read {self.name}: {exc.orig!s}".strip()
                + "\n(is the database up, and migrated with `waooaw db upgrade`?)"
            ) from None


class ApiSource:
    """The app's report API (WAOOAW_API_URL + WAOOAW_API_TOKEN): the app aggregates, we render."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.name = f"the report API at {self.url}"

    def daily(self, day: date) -> DailyReport:
        import httpx

        from agents.reports import DailyReport

        address = f"{self.url}/api/v1/reports/daily/{day.isoformat()}"
        try:
            response = httpx.get(address, headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ReportError(f"cannot reach {address}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code == 401:
            raise ReportError(f"{address} refused WAOOAW_API_TOKEN (401): give it a token that may read reports")
        if response.status_code != 200:
            raise ReportError(f"{address} answered {response.status_code}: {response.text[:500]}")
        return DailyReport.model_validate(response.json())


def _store(settings: Settings) -> Store:
    from agents.store.db import Store

    store = Store(settings.database_url)
    if store.engine.dialect.name == "sqlite":  # the embedded default: make it usable as `serve` does
        store.upgrade()
    return store


def _source(settings: Settings, zone: ZoneInfo) -> ReportSource:
    token = settings.api_token.get_secret_value() if settings.api_token is not None else ""
    if settings.api_url and token:
        return ApiSource(settings.api_url, token)
    if settings.api_url or token:
        missing = "WAOOAW_API_TOKEN" if settings.api_url else "WAOOAW_API_URL"
        raise ReportError(f"the report API needs WAOOAW_API_URL and WAOOAW_API_TOKEN: {missing} is not set")
    return StoreSource(_store(settings), zone, settings.report_budget_usd)


def missing_days(out: Path, day: date, catch_up: int) -> list[date]:
    """Days among the `catch_up` before `day` without a report in `out/daily`, after the first one there."""
    from agents.reports import markdown_path

    if catch_up <= 0:
        return []
    existing = sorted(date.fromisoformat(p.stem) for p in (out / "daily").glob("????-??-??.md"))
    if not existing:
        return []
    candidates = [day - timedelta(days=n) for n in range(catch_up, 0, -1)]
    return [d for d in candidates if d > existing[0] and not (out / markdown_path(d)).exists()]


def _issue_image_base(settings: Settings, repo: str, out: Path) -> tuple[str, str] | None:
    """Where the committed charts are on GitHub, when `out` is inside the checkout we run in."""
    try:
        relative = out.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None
    return f"{settings.github_web_url}/{repo}/blob/HEAD/{relative.as_posix()}/daily/".replace("/./", "/"), "?raw=true"


class Poster:
    """Publishes the day's issue and closes the previous day's, through the edge's publisher."""

    def __init__(self, settings: Settings, repo: str, store: Store) -> None:
        from agents.context.documents import split_repo
        from bot.github import github_clients
        from bot.wiring import make_publisher

        split_repo(repo)  # a clear error for a malformed --repo, before any work
        self.settings, self.repo = settings, repo
        self.clients = github_clients(settings)
        self.publisher: Publisher = make_publisher(store, self.clients)
        self.installation_id: int | None = None

    async def _installation(self) -> int | None:
        """With App auth (and no GITHUB_TOKEN), the installation on the repo, asked of GitHub once."""
        if self.clients is None or self.clients.mode != "app" or self.settings.github_token is not None:
            return None
        if self.installation_id is None:
            from agents.context.documents import split_repo

            owner, name = split_repo(self.repo)
            response = await self.clients.app().rest.apps.async_get_repo_installation(owner, name)
            self.installation_id = response.parsed_data.id
        return self.installation_id

    async def publish(self, outputs: list[Any], day: date) -> None:
        from agents.reports.daily import REPORT_AGENT
        from bot.publish import Origin

        origin = Origin(delivery_id=f"report-{day.isoformat()}", installation_id=await self._installation())
        await self.publisher.publish(REPORT_AGENT, outputs, origin)

    async def close(self) -> None:
        await self.publisher.close()


def _summary(report: DailyReport) -> str:
    h = report.headline
    if report.empty:
        return "an empty day (no activity recorded)"
    partial = "" if report.complete else ", partial (the day is not over)"
    return (
        f"{h.events:,} events, {h.agent_runs:,} runs, {report.health.run_failures:,} failures, "
        f"{h.decisions_total:,} decisions, {h.outputs_published:,} outputs, ${h.cost_usd:,.2f} LLM{partial}"
    )


def run_daily(settings: Settings, day_text: str, repo: str | None, out: Path, post: bool, catch_up: int) -> list[Path]:
    """The command's work; raises ReportError (or typer.BadParameter) with what to fix."""
    from agents.reports import (
        close_intent,
        image_links,
        parse_day,
        post_intent,
        render_charts,
        render_markdown,
        report_files,
    )

    if post and not repo:
        raise typer.BadParameter(
            "--post needs --repo OWNER/NAME: the repository the issue goes to", param_hint="--repo"
        )
    try:
        zone = settings.report_zone()
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    try:
        day = parse_day(day_text, zone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--date") from None
    source = _source(settings, zone)
    poster = None
    if post and repo:
        poster = Poster(settings, repo, source.store if isinstance(source, StoreSource) else _store(settings))
    image_base = _issue_image_base(settings, repo, out) if repo else None
    typer.echo(f"report: reading {source.name}", err=True)

    reports: dict[date, DailyReport] = {}

    def report_for(d: date) -> DailyReport:
        if d not in reports:
            reports[d] = source.daily(d)
            if reports[d].timezone != zone.key:
                typer.echo(f"warning: the report API cuts days in {reports[d].timezone}, not {zone.key}", err=True)
        return reports[d]

    def issue_markdown(report: DailyReport) -> str:
        return render_markdown(report, image_links(report, *image_base) if image_base else None)

    written: list[Path] = []
    try:
        for d in [*missing_days(out, day, catch_up), day]:
            report = report_for(d)
            charts = render_charts(report)
            markdown = render_markdown(report, image_links(report))
            intent = post_intent(report, issue_markdown(report), repo, report_files(report, markdown, charts))
            paths = write_files(out, intent.files)
            written += paths
            typer.echo(f"{paths[0]}: {_summary(report)}")
            if poster is not None and repo:  # a poster is made only with a repo
                asyncio.run(poster.publish([intent], d))
                previous = report_for(d - timedelta(days=1))
                asyncio.run(poster.publish([close_intent(previous, issue_markdown(previous), repo)], d))
                typer.echo(f"{repo}: issue for {d} upserted, {d - timedelta(days=1)}'s closed")
    finally:
        if poster is not None:
            asyncio.run(poster.close())
    return written
