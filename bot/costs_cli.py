"""`waooaw costs`: the decision ledger's spend as a table, by agent, repository, model or installation.

Exit codes: 0 printed (an empty ledger included), 2 a bad `--since`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

import typer

from agents.ledger import SpendLine

HEADERS = ("decisions", "model calls", "tokens in", "tokens out", "cost (USD)")


class By(StrEnum):
    agent = "agent"
    repo = "repo"
    model = "model"
    installation = "installation"


def costs(
    since: Annotated[
        str | None, typer.Option(help="From this day (YYYY-MM-DD, UTC) or time (ISO 8601); default: all of it.")
    ] = None,
    by: Annotated[By, typer.Option(help="What each line sums.")] = By.agent,
) -> None:
    """The spend ledger as a table: decisions, tokens and USD, with a total."""
    from agents.ledger import spend_by
    from agents.store.db import Store
    from bot import logging as waooaw_logging
    from bot.settings import cli_settings

    settings = cli_settings()
    waooaw_logging.configure(settings.log_level)
    try:
        start = parse_since(since) if since else None
    except ValueError:
        typer.echo(f"error: --since {since!r}: give a day (2026-12-01) or an ISO time (2026-12-01T08:00:00Z)", err=True)
        raise typer.Exit(2) from None
    store = Store(settings.database_url)
    try:
        with store.reading() as session:
            rows = spend_by(session, by.value, start)
    finally:
        store.engine.dispose()
    typer.echo(table(by.value, rows))


def parse_since(text: str) -> datetime:
    """A day is its start in UTC; a time without a zone is UTC."""
    if "T" in text or " " in text:
        moment = datetime.fromisoformat(text)
    else:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def table(by: str, rows: list[SpendLine]) -> str:
    total = SpendLine(
        "total",
        sum(r.decisions for r in rows),
        sum(r.model_calls for r in rows),
        sum(r.tokens_in for r in rows),
        sum(r.tokens_out for r in rows),
        sum(r.cost_usd for r in rows),
    )
    lines = [(by, *HEADERS)] + [_cells(row) for row in rows] + [_cells(total)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS) + 1)]
    rendered = [
        "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)).rstrip()
        for line in lines
    ]
    rule = "-" * len(rendered[0])
    return "\n".join([rendered[0], rule, *rendered[1:-1], rule, rendered[-1]])


def _cells(row: SpendLine) -> tuple[str, ...]:
    key = "(none)" if row.key is None else row.key
    counts = (row.decisions, row.model_calls, row.tokens_in, row.tokens_out)
    return (key, *map(str, counts), f"{row.cost_usd:.4f}")
