"""The daily reports on the app: `GET /reports`, `GET /reports/daily/{date}` (HTML) and
`GET /api/v1/reports/daily/{date}` (the report's data as JSON, for `waooaw report daily`
in API mode and the report workflow).

Every route needs a read token: `Authorization: Bearer <token>` (the HTML pages also
take it as the password of HTTP Basic auth, so a browser can prompt). Who may read is
decided by one pluggable check, `app.state.report_token_check`: a callable taking the
token and returning a `ReportAccess` (or None to refuse, or raising a 403 HTTPException for a
token that is valid but may not read reports), sync or async. Until the app
sets one, the check compares with `WAOOAW_REPORTS_TOKEN`; with neither, every request
is refused (401) — report pages are never open to anyone by default.

A `ReportAccess` with an installation id limits the report to that installation's
deliveries, runs, decisions and outputs (the shape of the Context API's tokens);
`installation_id=None` is an operator's view of every installation.
"""

from __future__ import annotations

import base64
import hmac
import html
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from agents import tokens
from agents.store.db import Store
from bot.settings import Settings

if TYPE_CHECKING:  # the reports (and matplotlib) load when a report is asked for
    from agents.reports.model import DailyReport

LIST_DAYS = 30
LIST_DAYS_MAX = 90


@dataclass(frozen=True)
class ReportAccess:
    """What a read token may see: one installation, or every one (None)."""

    installation_id: int | None = None


TokenCheck = Callable[[str], "ReportAccess | None | Awaitable[ReportAccess | None]"]


def settings_token_check(settings: Settings) -> TokenCheck | None:
    """The interim check: the bearer token must equal WAOOAW_REPORTS_TOKEN (None when unset)."""
    if settings.reports_token is None:
        return None
    expected = settings.reports_token.get_secret_value().encode()

    def check(token: str) -> ReportAccess | None:
        return ReportAccess() if hmac.compare_digest(token.encode(), expected) else None

    return check


def _unauthorized(request: Request, message: str) -> HTTPException:
    # The HTML pages also take the token as a Basic password, so a browser can ask for it.
    challenge = "Bearer" if request.url.path.startswith("/api/") else "Basic"
    return HTTPException(401, message, headers={"WWW-Authenticate": f'{challenge} realm="waooaw-reports"'})


def _presented_token(request: Request) -> str | None:
    """`Authorization: Bearer <token>`, or Basic with the token as the password (any user name)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or None
    return None


async def report_reader(request: Request) -> ReportAccess:
    """The dependency every report route takes: a valid read token, or 401."""
    check: TokenCheck | None = getattr(request.app.state, "report_token_check", None)
    if check is None:
        check = settings_token_check(request.app.state.platform.settings)
    if check is None:
        raise _unauthorized(request, "report pages need a read token and none is configured: set WAOOAW_REPORTS_TOKEN")
    token = _presented_token(request)
    if token is None:
        raise _unauthorized(request, "send a read token: Authorization: Bearer <token>")
    access = check(token)
    if inspect.isawaitable(access):
        access = await access
    if access is None:
        raise _unauthorized(request, "the token is not valid for reading reports")
    return access


class Refusal(BaseModel):
    detail: str


def _refusal(description: str) -> dict[str, Any]:
    # JSON on every route, the HTML pages included (a "model" would be documented as the page's type)
    return {"description": description, "content": {"application/json": {"schema": Refusal.model_json_schema()}}}


router = APIRouter(tags=["reports"], responses={401: _refusal("No read token, or one that may not read reports.")})
Reader = Annotated[ReportAccess, Depends(report_reader)]
NOT_A_DAY: dict[int | str, dict[str, Any]] = {
    400: _refusal("Not a report date: today, yesterday or YYYY-MM-DD, from 1970-01-01 to today.")
}


def _zone(settings: Settings) -> ZoneInfo:
    try:
        return settings.report_zone()
    except ValueError as exc:
        raise HTTPException(500, str(exc)) from None


def _day(value: str, zone: ZoneInfo) -> date:
    from agents.reports import parse_day

    try:
        return parse_day(value, zone)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def _build(request: Request, day: str, access: ReportAccess) -> DailyReport:
    from agents.reports import build_daily_report

    settings: Settings = request.app.state.platform.settings
    zone = _zone(settings)
    return build_daily_report(
        request.app.state.platform.store,
        _day(day, zone),
        zone,
        budget_usd=settings.report_budget_usd,
        installation_id=access.installation_id,
    )


@router.get("/api/v1/reports/daily/{day}", responses=NOT_A_DAY)
async def daily_report_json(request: Request, day: str, access: Reader) -> JSONResponse:
    """The report's data (agents.reports.model.DailyReport) as JSON."""
    zone = _zone(request.app.state.platform.settings)
    _day(day, zone)  # a bad date is a 400 before any work
    report = await run_in_threadpool(_build, request, day, access)
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/reports/daily/{day}", response_class=HTMLResponse, responses=NOT_A_DAY)
async def daily_report_html(request: Request, day: str, access: Reader) -> HTMLResponse:
    zone = _zone(request.app.state.platform.settings)
    _day(day, zone)
    page = await run_in_threadpool(_render_page, request, day, access)
    return HTMLResponse(page)


def _render_page(request: Request, day: str, access: ReportAccess) -> str:
    import markdown

    from agents.reports import daily_title, render_charts, render_markdown

    report = _build(request, day, access)
    # Charts inline (data: URIs): the page is one response, and an <img> could not send the token.
    charts = {
        name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in render_charts(report).items()
    }
    body = markdown.markdown(render_markdown(report, charts), extensions=["tables"], output_format="html")
    return _page(daily_title(report.date), body)


@router.get("/reports", response_class=HTMLResponse)
async def reports_index(
    request: Request,
    access: Reader,
    days: Annotated[int, Query(ge=1, le=LIST_DAYS_MAX, description="how many days back to list")] = LIST_DAYS,
) -> HTMLResponse:
    from agents.reports import first_day, parse_day

    zone = _zone(request.app.state.platform.settings)
    store = request.app.state.platform.store
    today = parse_day("today", zone)
    first = await run_in_threadpool(first_day, store, zone, installation_id=access.installation_id)
    listed = [today - timedelta(days=n) for n in range(days)]
    items = []
    for d in listed:
        if first is not None and d < first:
            break
        note = " (today, partial)" if d == today else ""
        items.append(
            f'<li><a href="reports/daily/{d.isoformat()}">{d.isoformat()}</a>{note} · '
            f'<a href="api/v1/reports/daily/{d.isoformat()}">JSON</a></li>'
        )
    if first is None:
        items = ["<li>No data in the store yet: reports appear once events arrive.</li>"]
    body = (
        f"<h1>WAOOAW daily reports</h1><p>Days in {html.escape(zone.key)}, newest first"
        f"{'' if first is None else ', back to the first day with data (' + first.isoformat() + ')'}.</p>"
        f"<ul>{''.join(items)}</ul>"
    )
    return HTMLResponse(_page("WAOOAW daily reports", body))


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: 14px; }}
th, td {{ border: 1px solid #d0d7de; padding: .25rem .6rem; }}
th {{ background: #f6f8fa; }}
code {{ background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def api_token_check(store: Store) -> TokenCheck:
    """Report pages take the Context API's tokens: a valid token of a whole installation reads that
    installation's report (read-only tokens included). A report covers every repository and job of
    the installation, so a token bound to one repository or one job (a CoE runner's) is refused: 403."""

    def check_sync(token: str) -> ReportAccess | None:
        try:
            ident, secret = tokens.parse(token)
            with store.reading() as session:
                grant = tokens.check(tokens.load(session, ident), secret, time.time())
        except tokens.InvalidToken:
            return None
        if grant.job_id is not None or grant.repo is not None:
            raise HTTPException(
                403,
                "this token is bound to one repository or job, and a report covers the whole "
                "installation: read it with an installation's token (waooaw tokens create "
                "--installation ID --read-only)",
            )
        return ReportAccess(installation_id=grant.installation_id)

    async def check(token: str) -> ReportAccess | None:
        return await run_in_threadpool(check_sync, token)

    return check
