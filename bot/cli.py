"""The `waooaw` command."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer

from bot.lazy_groups import LazyCommand, LazyGroup, LazyRoot


class _Root(LazyRoot):
    # Imported only when one of their commands runs: `waooaw --help` and `waooaw vision check`
    # stay free of the SDKs and the CoE code (tests/integration/test_vision_cli.py checks it).
    # A command defined in this module imports what it needs inside its function, for the same reason.
    groups = {
        "context": LazyGroup(
            "bot.context_cli:context_app", "Versioned agent contexts: show, search, lineage, snapshot, restore."
        ),
        "tokens": LazyGroup("bot.context_cli:tokens_app", "Context API tokens: create and revoke."),
        "agents": LazyGroup("bot.agents_cli:agents_app", "The agents: the catalogue, and where each one works."),
        "vision": LazyGroup("bot.vision_cli:vision_app", "WowVision Prime: policy reviews."),
        "report": LazyGroup("bot.report_cli:report_app", "Reports: what the agents did, decided and cost."),
        "coe": LazyGroup("bot.coe_cli:coe_app", "Centre of Excellence jobs."),
        "deliveries": LazyGroup(
            "bot.deliveries_cli:deliveries_app", "Webhook deliveries: recover those GitHub could not deliver."
        ),
        "costs": LazyCommand(
            "bot.costs_cli:costs", "The spend ledger as a table: decisions, tokens and USD, with a total."
        ),
        "setup": LazyCommand(
            "bot.setup:setup",
            "Register the GitHub App from app.yml (GitHub's manifest flow) and write its credentials to .env (0600).",
        ),
    }


app = typer.Typer(help="WAOOAW: GitHub-native AI agents.", no_args_is_help=True, add_completion=False, cls=_Root)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Accept unsigned webhooks (local development only).")
    ] = False,
) -> None:
    """Run the web app; without WAOOAW_REDIS_URL it also runs the worker, in one process."""
    import uvicorn

    from bot.app import create_app
    from bot.settings import command_settings
    from bot.wiring import build_platform, freeze_startup_heap

    settings = command_settings()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if secret is None and not insecure_dev:
        typer.echo(
            "error: GITHUB_WEBHOOK_SECRET is not set. Set it to your GitHub App's webhook secret,\n"
            "or pass --insecure-dev to accept unsigned deliveries on a development machine.",
            err=True,
        )
        raise typer.Exit(2)
    if secret is None:
        typer.echo("warning: --insecure-dev: webhook signatures are NOT checked", err=True)
    platform = build_platform(settings)
    if settings.embedded:
        platform.store.upgrade()
    mode = (
        "embedded (SQLite/local bus, worker in this process)" if settings.embedded else "web only (workers run apart)"
    )
    dry = "" if settings.has_github_credentials else "; no GitHub credentials: outputs are printed (dry run)"
    typer.echo(f"waooaw serve: {mode}{dry}; webhook at http://{host}:{port}/webhooks/github", err=True)
    app = create_app(platform, secret=secret)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
def worker() -> None:
    """Consume the Redis event bus and run agents (several may run, on several machines)."""
    import asyncio
    import signal

    from bot import metrics, observability
    from bot.settings import command_settings
    from bot.wiring import build_platform, freeze_startup_heap

    settings = command_settings()
    if settings.redis_url is None:
        typer.echo(
            "error: WAOOAW_REDIS_URL is not set. Separate workers share work through Redis;\n"
            "without it, `waooaw serve` runs the worker inside the web process.",
            err=True,
        )
        raise typer.Exit(2)
    platform = build_platform(settings)
    observability.instrument(platform)
    metrics.serve(settings.worker_metrics_port)  # a worker serves no other HTTP: this is how it is scraped
    freeze_startup_heap()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await platform.worker().run(stop)
        finally:
            await platform.publisher.close()
            await platform.bus.close()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from agents.store.db import Store
    from bot.settings import command_settings

    settings = command_settings()
    store = Store(settings.database_url)
    store.upgrade()
    typer.echo(f"database at {store.engine.url.render_as_string(hide_password=True)} is up to date")


@db_app.command("prune")
def db_prune(
    retention_days: Annotated[int, typer.Option(help="Keep an uninstalled installation's data this long.")] = 30,
) -> None:
    """Delete the data of installations uninstalled longer ago than the retention period."""
    from datetime import timedelta

    from agents.store.db import Store
    from bot.settings import command_settings
    from bot.tenancy import prune

    store = Store(command_settings().database_url)
    gone = prune(store, timedelta(days=retention_days))
    typer.echo(f"pruned {len(gone)} installation(s){': ' + ', '.join(map(str, gone)) if gone else ''}")


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A webhook payload (JSON).")],
    event: Annotated[str, typer.Option("--event", help="The X-GitHub-Event name, e.g. pull_request.")],
    delivery: Annotated[str | None, typer.Option("--delivery", help="Delivery id; new each time if omitted.")] = None,
    repo: Annotated[
        Path | None, typer.Option("--repo", help="A local clone to read the change from (dry run, no credentials).")
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Base commit in --repo (default: the payload's, else the merge-base).")
    ] = None,
    head: Annotated[
        str | None, typer.Option("--head", help="Head commit in --repo (default: the payload's, else HEAD).")
    ] = None,
) -> None:
    """Push a payload through the whole pipeline in this process and wait until it is done."""
    import asyncio

    from bot.replay import notes, replay_file
    from bot.settings import command_settings
    from bot.usage import UsageError

    settings = command_settings()
    delivery_id = delivery or str(uuid.uuid4())
    try:
        outcome = asyncio.run(replay_file(settings, file, event, delivery_id, clone=repo, base=base, head=head))
    except UsageError as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(outcome, indent=2))
    for note in notes(settings, event, outcome, clone=repo):
        typer.echo(f"note: {note}", err=True)
    if outcome["status"] in ("failed", "dead"):
        raise typer.Exit(1)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Where the demo writes its files (replaced on the next run).")
    ] = Path("waooaw-demo"),
) -> None:
    """The three user paths end to end, offline: a PR reviewed, /waooaw help answered, a domain spec, a daily report."""
    from bot import logging as waooaw_logging
    from bot.demo_cli import DemoError, run_demo

    waooaw_logging.configure("WARNING")  # the demo prints what was posted; logs only for problems
    try:
        run_demo(out)
    except DemoError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
