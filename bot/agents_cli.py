"""`waooaw agents`: the catalogue, and each agent's lifecycle everywhere or on one repository.

    waooaw agents list [--repo OWNER/NAME]
    waooaw agents pause|resume|retire NAME [--repo OWNER/NAME]

Without `--repo` a state applies everywhere; with it, on that repository alone (of each
installation that holds it), where it wins over the state everywhere, except that an agent
retired everywhere is retired on every repository. Exit codes: 0 done, 2 an unknown agent
or repository.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agents.registry import Registry
    from agents.store.db import Store

agents_app = typer.Typer(help="The agents: the catalogue, and where each one works.", no_args_is_help=True)

RepoOption = Annotated[
    str | None,
    typer.Option("--repo", help="OWNER/NAME: on this repository alone (one the App is installed on)."),
]


@agents_app.command("list")
def agents_list(repo: RepoOption = None) -> None:
    """The agents, their state and what they wake on; with --repo, their hired identity there."""
    store, registry = _open()
    if repo is None:
        for name, state in registry.states().items():
            agent = registry.get(name)
            default = "hire" if agent.hire_required else "on"
            typer.echo(
                f"{name:<16} {state.value:<8} {agent.coe or '-':<12} {default:<5} "
                f"{', '.join(agent.wakes_on):<40} {agent.description}"
            )
        return
    for installation in _installations(store, repo):
        with store.reading() as session:
            standings = registry.standings(session, installation, repo)
        typer.echo(f"{repo} (installation {installation})")
        for name, standing in standings.items():
            agent = registry.get(name)
            hired = ("hired" if standing.hired else "not hired") + f" ({standing.hired_by})"
            here = standing.state.value + (" (here)" if standing.state_set == "repo" else "")
            budget = f"${standing.budget_usd:g}" if standing.budget_usd is not None else "-"
            typer.echo(f"  {name:<16} {agent.coe or '-':<12} {hired:<20} {here:<15} {budget:<8} {agent.description}")


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

    store = open_store(command_settings())
    return store, default_registry(store)


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
