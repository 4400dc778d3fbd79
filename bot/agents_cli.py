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

agents_app = typer.Typer(help="The agents: the catalogue, and where each one works.", no_args_is_help=True)

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
    registry = default_registry(store, spec_dirs=settings.agent_specs)
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


@agents_app.command("test")
def test(paths: PathsArgument) -> None:
    """Run specs' golden examples against a scripted model: exit 0 all pass, 1 a failure, 2 an invalid spec."""
    import asyncio

    from agents.factory.catalogue import CatalogueError, load_specs
    from agents.factory.examples import run_examples

    try:
        specs = load_specs(paths)
    except CatalogueError as error:
        typer.echo(str(error))
        raise typer.Exit(2) from None
    failed = total = 0
    for spec in specs:
        for result in asyncio.run(run_examples(spec)):
            total += 1
            if result.passed:
                typer.echo(f"PASS {spec.name}: {result.example.name}")
                continue
            failed += 1
            typer.echo(f"FAIL {spec.name}: {result.example.name} ({spec.source})")
            typer.echo(result.report())
    typer.echo(f"{total - failed} of {total} example{'' if total == 1 else 's'} passed")
    if failed:
        raise typer.Exit(1)


@agents_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The agent's name: a lowercase letter, then letters, digits or '-'.")],
    coe: Annotated[str, typer.Option("--coe", help="The Centre of Excellence it belongs to (support, sales …).")],
    out: Annotated[
        Path, typer.Option("--out", help="The catalogue directory: the spec goes in DIR/COE/NAME.yaml.")
    ] = Path("."),
) -> None:
    """Write a spec skeleton and its example payload, which validate and whose example passes."""
    from agents.factory.skeleton import new_spec

    try:
        files = new_spec(name, coe)
    except ValueError as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    _write_new(out, files)


@agents_app.command("propose")
def propose(
    source: Annotated[
        Path,
        typer.Option("--from", exists=True, dir_okay=False, help="A WowDomain spec: domains/<slug>/spec.yaml."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where the drafts go: DIR/<domain slug>/<role>.yaml.")],
) -> None:
    """Draft agent specs from a WowDomain spec's roles and skills (off until a repository hires them)."""
    import yaml
    from pydantic import ValidationError

    from agents.domain.spec import DomainSpec
    from agents.factory.propose import propose as draft

    try:
        domain = DomainSpec.model_validate(yaml.safe_load(source.read_text()))
    except (yaml.YAMLError, ValidationError) as problem:
        typer.echo(f"error: {source} is not a WowDomain spec: {problem}", err=True)
        raise typer.Exit(2) from None
    _write_new(out, draft(domain))


def _write_new(out: Path, files: dict[str, str]) -> None:
    """Write files under `out`, none of them if one is there already (exit 2)."""
    there = [str(out / path) for path in files if (out / path).exists()]
    if there:
        typer.echo(f"error: not overwriting {', '.join(there)}", err=True)
        raise typer.Exit(2)
    from bot.files import write_files

    for path in write_files(out, files):
        typer.echo(f"wrote {path}")
