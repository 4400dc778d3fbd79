"""`waooaw agents`: the catalogue, each agent's lifecycle everywhere or on one repository, and
the specs that make agents.

    waooaw agents list [--repo OWNER/NAME]
    waooaw agents pause|resume|retire NAME [--repo OWNER/NAME]
    waooaw agents validate|test PATH…
    waooaw agents new NAME --coe COE [--out DIR]
    waooaw agents propose --from domains/<slug>/spec.yaml --out DIR

Without `--repo` a state applies everywhere; with it, on that repository alone (of each
installation that holds it), where it wins over the state everywhere, except that an agent
retired everywhere is retired on every repository. Exit codes: 0 done, 2 an unknown agent
or repository.

`validate` exits 0 when every spec is valid, 2 when one is not, each problem printed as
`FILE:LINE: where: message`; `test` runs each spec's golden examples against a scripted model
(no network, no LLM client): exit 0 when all pass, 1 when one fails (with a diff of the expected
and the produced intents), 2 when a spec is invalid; `new` writes a spec skeleton and its example
payload, which validate and whose example passes; `propose` drafts specs from a WowDomain spec's
roles and skills (see docs/writing-an-agent-spec.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agents.registry import Registry
    from agents.store.db import Store

agents_app = typer.Typer(help="The agents: the catalogue, and where each one works.", no_args_is_help=True)

PathsArgument = Annotated[list[Path], typer.Argument(help="Spec files, or directories of them.")]
RepoOption = Annotated[
    str | None,
    typer.Option("--repo", help="OWNER/NAME: on this repository alone (one the App is installed on)."),
]


@agents_app.command("list")
def agents_list(repo: RepoOption = None) -> None:
    """The agents, their state and what they wake on; with --repo, their hired identity and reputation there."""
    from agents.reputation import scores, summary

    store, registry = _open()
    if repo is None:
        for name, state in registry.states().items():
            agent = registry.get(name)
            default = "hire" if agent.hire_required else "on"
            typer.echo(
                f"{name:<16} {state.value:<8} {agent.coe or '-':<12} {default:<5} "
                f"{', '.join(agent.wakes_on):<40} {_short(agent.description)}"
            )
        return
    for installation in _installations(store, repo):
        with store.reading() as session:
            standings = registry.standings(session, installation, repo)
            reputation = scores(session, installation, repo, evidence=0)
        typer.echo(f"{repo} (installation {installation})")
        for name, standing in standings.items():
            agent = registry.get(name)
            hired = ("hired" if standing.hired else "not hired") + f" ({standing.hired_by})"
            here = standing.state.value + (" (here)" if standing.state_set == "repo" else "")
            budget = f"${standing.budget_usd:g}" if standing.budget_usd is not None else "-"
            score = summary(reputation.get(name))
            typer.echo(
                f"  {name:<16} {agent.coe or '-':<12} {hired:<20} {here:<15} {budget:<8} {score:<18} "
                f"{_short(agent.description)}"
            )


@agents_app.command("pause")
def agents_pause(name: Annotated[str, typer.Argument(help="The agent.")], repo: RepoOption = None) -> None:
    """Stop an agent from waking (everywhere, or on one repository); its work so far stays."""
    _set(name, "paused", repo)


@agents_app.command("resume")
def agents_resume(name: Annotated[str, typer.Argument(help="The agent.")], repo: RepoOption = None) -> None:
    """Let a paused agent wake again (everywhere, or on one repository)."""
    _set(name, "active", repo)


@agents_app.command("retire")
def agents_retire(name: Annotated[str, typer.Argument(help="The agent.")], repo: RepoOption = None) -> None:
    """Retire an agent (everywhere, or on one repository): it never wakes until resumed."""
    _set(name, "retired", repo)


def _set(name: str, state_name: str, repo: str | None) -> None:
    from agents import hires
    from agents.registry import Lifecycle

    store, registry = _open()
    _known(registry, name)
    state = Lifecycle(state_name)
    if repo is None:
        registry.set_state(name, state)
        typer.echo(f"{name}: {state.value} everywhere")
        with store.reading() as session:
            overrides = [item for item in hires.overrides(session, name) if item[2] is not state]
        if overrides and state is not Lifecycle.RETIRED:
            for installation, where, own in overrides:
                typer.echo(f"note: {name} is {own.value} on {where} (installation {installation}), which wins there")
        return
    installations = _installations(store, repo)
    registry.set_state(name, state, repos=[(installation, repo) for installation in installations])
    typer.echo(f"{name}: {state.value} on {repo}")
    if state is not Lifecycle.RETIRED and registry.states()[name] is Lifecycle.RETIRED:
        typer.echo(f"note: {name} is retired everywhere, which wins on every repository", err=True)


def _open() -> tuple[Store, Registry]:
    from agents.catalog import default_registry
    from bot.settings import command_settings
    from bot.wiring import open_store

    settings = command_settings()
    store = open_store(settings)
    return store, default_registry(store, spec_dirs=settings.agent_specs)


def _known(registry: Registry, name: str) -> None:
    if name not in registry.names():
        typer.echo(f"error: no agent named {name!r}; the catalogue: {', '.join(registry.names())}", err=True)
        raise typer.Exit(2)


def _installations(store: Store, repo: str) -> list[int]:
    """The installations that hold `repo` (normally one); exit 2 when none does."""
    from bot.tenancy import installations_of

    if repo.count("/") != 1 or not all(repo.split("/")):
        typer.echo(f"error: --repo takes OWNER/NAME, not {repo!r}", err=True)
        raise typer.Exit(2)
    with store.reading() as session:
        installations = list(installations_of(session, repo))
    if not installations:
        typer.echo(
            f"error: {repo} is not a repository the App is installed on (none of the installations "
            "recorded from GitHub's installation events holds it)",
            err=True,
        )
        raise typer.Exit(2)
    return installations


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


def _short(description: str, width: int = 100) -> str:
    """A description's first line, cut to fit a table row (a spec's may run to a paragraph)."""
    line = description.strip().splitlines()[0] if description.strip() else ""
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"
