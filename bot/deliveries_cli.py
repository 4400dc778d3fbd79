"""`waooaw deliveries recover`: have GitHub redeliver the App's deliveries that never reached the inbox.

Exit codes: 0 done (nothing to do included), 1 GitHub refused a redelivery or the list, 2 a usage
error (no App credentials, a bad `--since`).
"""

from __future__ import annotations

from typing import Annotated

import typer

deliveries_app = typer.Typer(help="Webhook deliveries: recover those GitHub could not deliver.", no_args_is_help=True)


@deliveries_app.command("recover")
def recover_command(
    since: Annotated[str, typer.Option(help="How far back to look: 90m, 24h, 3d (GitHub keeps 3 days).")] = "72h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the missed deliveries; redeliver none.")] = False,
) -> None:
    """Redeliver what GitHub could not deliver to us (App mode): failed deliveries and those missing from the inbox."""
    import asyncio

    from githubkit.exception import GitHubException
    from sqlalchemy.exc import DBAPIError

    from agents.store.db import Store
    from agents.tokens import parse_ttl
    from bot import logging as waooaw_logging
    from bot.deliveries import recover
    from bot.github import GitHubClients, GitHubCredentialsError
    from bot.inbox import Inbox
    from bot.settings import cli_settings

    settings = cli_settings()
    waooaw_logging.configure(settings.log_level)
    try:
        window = parse_ttl(since)
    except ValueError as exc:
        typer.echo(f"error: --since {since!r}: {str(exc).replace('TTL', 'duration')}", err=True)
        raise typer.Exit(2) from None
    if settings.app_id is None or settings.private_key is None:
        typer.echo(
            "error: deliveries recover needs the GitHub App's credentials: only the App itself may list and\n"
            "redeliver its webhook deliveries. Set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _PATH).",
            err=True,
        )
        raise typer.Exit(2)
    try:
        clients = GitHubClients(settings)
        recovery = asyncio.run(recover(clients, Inbox(Store(settings.database_url)), window, dry_run=dry_run))
    except GitHubCredentialsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except GitHubException as exc:
        typer.echo(f"error: GitHub did not list the App's deliveries: {exc.__class__.__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    except DBAPIError as exc:
        typer.echo(
            f"error: cannot read the inbox: {exc.orig!s}\n(is the database up, and migrated with `waooaw db upgrade`?)",
            err=True,
        )
        raise typer.Exit(1) from None
    for line in recovery.lines():
        typer.echo(line)
    if not recovery.ok:
        raise typer.Exit(1)
