"""`waooaw messages list`: what agents said to each other, as a table (agents/message_log.py reads it).

Exit codes: 0 printed (no messages included).
"""

from __future__ import annotations

from typing import Annotated

import typer

from agents.message_log import DEFAULT_LIMIT, MessageLine

messages_app = typer.Typer(help="Agents' messages to each other: conversations.", no_args_is_help=True)
HEADERS = ("time (UTC)", "kind", "from → to", "correlation", "state", "body")


@messages_app.command("list")
def list_command(
    correlation: Annotated[str | None, typer.Option(help="Only this conversation (its correlation id).")] = None,
    repo: Annotated[str | None, typer.Option(help="Only this repository, OWNER/NAME.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, the latest.", min=1, max=10_000)] = DEFAULT_LIMIT,
) -> None:
    """Agents' messages, oldest first: time, kind, sender → addressee, conversation, state, body."""
    from agents.message_log import list_messages
    from agents.store.db import Store
    from bot.settings import command_settings

    settings = command_settings()
    store = Store(settings.database_url)
    try:
        with store.reading() as session:
            lines = list_messages(session, correlation_id=correlation, repo=repo, limit=limit)
    finally:
        store.engine.dispose()
    typer.echo(table(lines) if lines else "no messages")


def table(lines: list[MessageLine]) -> str:
    from datetime import UTC

    from agents.message_log import summary

    rows = [HEADERS] + [
        (
            line.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            line.kind,
            f"{line.sender} → {line.addressee}",
            line.correlation_id,
            line.state,
            summary(line.body),
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    rendered = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join([rendered[0], "-" * len(rendered[0]), *rendered[1:]])
