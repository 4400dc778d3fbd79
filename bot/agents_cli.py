"""`waooaw agents …`: the agents of this installation, and the specs that make agents.

- `list` — the agents, their state and what they wake on;
- `validate PATH…` — spec files or directories of them: exit 0 when every spec is valid,
  2 when one is not, each problem printed as `FILE:LINE: where: message`;
- `test PATH…` — each spec's golden examples against a scripted model (no network, no
  LLM client): exit 0 when all pass, 1 when one fails (with a diff of the expected and the
  produced intents), 2 when a spec is invalid;
- `new NAME --coe COE [--out DIR]` — a spec skeleton and its example payload, which validate
  and whose example passes;
- `propose --from domains/<slug>/spec.yaml --out DIR` — draft specs from a WowDomain spec's
  roles and skills (see docs/writing-an-agent-spec.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

agents_app = typer.Typer(help="The agents, and the specs that make agents.", no_args_is_help=True)

PathsArgument = Annotated[list[Path], typer.Argument(help="Spec files, or directories of them.")]


@agents_app.command("list")
def agents_list() -> None:
    """The agents, their state and what they wake on."""
    from agents.catalog import default_registry
    from agents.store.db import Store
    from bot.settings import command_settings

    settings = command_settings()
    store = Store(settings.database_url)
    store.upgrade()
    registry = default_registry(store)
    for name, state in registry.states().items():
        agent = registry.get(name)
        typer.echo(f"{name:<16} {state.value:<8} {', '.join(agent.wakes_on):<40} {agent.description}")


@agents_app.command("validate")
def validate(paths: PathsArgument) -> None:
    """Check agent specs: exit 0 valid, 2 invalid (each problem as FILE:LINE: message)."""
    from agents.factory.catalogue import CatalogueError, load_specs

    try:
        specs = load_specs(paths)
    except CatalogueError as error:
        typer.echo(str(error))
        raise typer.Exit(2) from None
    for spec in specs:
        typer.echo(f"ok {spec.source}: {spec.name} ({spec.coe})")
    typer.echo(f"{len(specs)} spec{'' if len(specs) == 1 else 's'} valid")
