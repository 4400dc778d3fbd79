"""`waooaw context …` and `waooaw tokens …`.

`context` works on the store at WAOOAW_DATABASE_URL (the installation is the one the
repository's contexts belong to, or --installation), or, when WAOOAW_API_URL is set,
through the Context API with WAOOAW_API_TOKEN (the token fixes the installation).
`tokens` always works on the store: issuing credentials needs the database.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select

from agents.context.client import ContextClient
from agents.context.client_values import Context
from agents.context.errors import ContextError, NotFound
from agents.store.db import Store
from agents.tokens import DEFAULT_TTL
from bot.settings import Settings, command_settings
from bot.tenancy import repo_installations
from bot.usage import UsageError
from bot.wiring import cli_actor, open_context_client, open_store

context_app = typer.Typer(
    help="Versioned agent contexts: show, search, lineage, snapshot, restore.", no_args_is_help=True
)
tokens_app = typer.Typer(help="Context API tokens: create and revoke.", no_args_is_help=True)

InstallationOption = Annotated[
    int | None,
    typer.Option(
        "--installation", help="The installation (database mode; default: the one the repository's contexts have)."
    ),
]


def _client(
    settings: Settings, installation: int | None, *, repo: str | None = None, snapshot: int | None = None
) -> ContextClient:
    if settings.api_url is not None:
        return open_context_client(settings)
    store = open_store(settings)
    if installation is None:
        installation = _installation_of(store, repo=repo, snapshot=snapshot)
    return open_context_client(settings, installation_id=installation, actor=cli_actor(), store=store)


def job_repository(store: Store, installation: int, job: str) -> str:
    """The repository of a WowDomain job of the installation, as its record says: a job's token reaches no other."""
    from agents.context.models import ContextVersion
    from agents.domain.job import AGENT

    query = select(ContextVersion.repo).where(
        ContextVersion.installation_id == installation, ContextVersion.agent == AGENT, ContextVersion.scope == job
    )
    with store.reading() as session:
        repos = sorted(set(session.scalars(query)))
    if len(repos) == 1:
        return repos[0]
    found = f"job {job} is in {', '.join(repos)}" if repos else f"no job {job} in installation {installation}"
    raise UsageError(f"{found}: name the repository its token is for with --repo OWNER/NAME")


def _installation_of(store: Store, *, repo: str | None, snapshot: int | None) -> int:
    from agents.context.models import ContextSnapshot

    if snapshot is not None:
        with store.reading() as session:
            found = session.get(ContextSnapshot, snapshot)
        if found is None:
            raise UsageError(f"no snapshot {snapshot}")
        return found.installation_id
    if repo is not None:
        owners = repo_installations(store, repo)
        if len(owners) == 1:
            return owners[0]
        if owners:
            raise UsageError(f"{repo} has contexts in installations {sorted(owners)}: pass --installation")
        raise UsageError(f"no contexts for {repo}: pass --installation to say which installation to look in")
    raise UsageError("pass --installation (or --repo, to use the installation its contexts belong to)")


def _run(action: Any) -> Any:
    try:
        return action()
    except UsageError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    except ContextError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option}: not an ISO 8601 date or time: {text!r}") from exc


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _line(context: Context) -> str:
    when = context.created_at.isoformat(timespec="seconds") if context.created_at else "-"
    summary = context.summary.splitlines()[0][:80] if context.summary else ""
    return f"{context.repo}  {context.agent}  {context.scope}  v{context.version}  {when}  {summary}".rstrip()


# --------------------------------------------------------------------------- context


@context_app.command("show")
def context_show(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME")],
    agent: Annotated[str, typer.Argument()],
    scope: Annotated[str, typer.Argument()],
    version: Annotated[int | None, typer.Option(help="A version; the latest by default.")] = None,
    installation: InstallationOption = None,
) -> None:
    """Print a context version as JSON."""

    def show() -> None:
        with _client(command_settings(), installation, repo=repo) as client:
            found = client.get(repo, agent, scope, version=version)
        if found is None:
            raise NotFound(f"no context {repo}/{agent}/{scope}" + (f" version {version}" if version else ""))
        typer.echo(json.dumps(_plain(asdict(found)), indent=2, ensure_ascii=False))

    _run(show)


@context_app.command("search")
def context_search(
    repo: Annotated[str | None, typer.Option(help="OWNER/NAME")] = None,
    agent: Annotated[str | None, typer.Option()] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    scope_prefix: Annotated[str | None, typer.Option(help="Scopes starting with this, e.g. a job id.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Carries this tag (repeat: all of them).")] = None,
    q: Annotated[str | None, typer.Option("--q", "--text", help="Words in the summary.")] = None,
    since: Annotated[str | None, typer.Option(help="Written at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Written before (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1 to 200) per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page, as the previous one printed it.")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="Every version, not only the latest.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The page as JSON.")] = False,
    installation: InstallationOption = None,
) -> None:
    """Find contexts (their latest versions), newest first."""

    def search() -> None:
        filters: dict[str, Any] = {
            "repo": repo,
            "agent": agent,
            "scope": scope,
            "scope_prefix": scope_prefix,
            "tags": tag or [],
            "q": q,
            "since": _when(since, "--since"),
            "until": _when(until, "--until"),
            "limit": limit,
            "cursor": cursor,
            "all_versions": all_versions,
        }
        with _client(command_settings(), installation, repo=repo) as client:
            page = client.search(**filters)
        if as_json:
            typer.echo(json.dumps(_plain(asdict(page)), indent=2, ensure_ascii=False))
            return
        for item in page.items:
            typer.echo(_line(item))
        if page.next:
            typer.echo(f"more: --cursor {page.next}", err=True)

    _run(search)


@context_app.command("lineage")
def context_lineage(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME")],
    agent: Annotated[str, typer.Argument()],
    scope: Annotated[str, typer.Argument()],
    version: Annotated[int | None, typer.Option(help="Whose lineage; the latest version by default.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
    installation: InstallationOption = None,
) -> None:
    """The versions (and handoffs) that led to a version, oldest first."""

    def lineage() -> None:
        with _client(command_settings(), installation, repo=repo) as client:
            entries = client.lineage(repo, agent, scope, version=version)
        if as_json:
            typer.echo(json.dumps(_plain([asdict(entry) for entry in entries]), indent=2, ensure_ascii=False))
            return
        for entry in entries:
            origin = f"job {entry.job}" if entry.job else (f"event {entry.event}" if entry.event else "-")
            notes = []
            if entry.restores:
                notes.append(f"restores v{entry.restores[1]} of snapshot {entry.restores[0]}")
            if entry.kept_by_snapshot:
                notes.append(f"kept by snapshot {entry.kept_by_snapshot}")
            notes += [f"handoff {handoff['id']} → {handoff['to_agent']}" for handoff in entry.handoffs]
            when = entry.created_at.isoformat(timespec="seconds") if entry.created_at else "-"
            summary = entry.summary.splitlines()[0][:60] if entry.summary else ""
            line = f"v{entry.version}  {when}  {entry.created_by or '-'}  {origin}  {summary}"
            typer.echo(line.rstrip() + (f"  ({'; '.join(notes)})" if notes else ""))

    _run(lineage)


@context_app.command("snapshot")
def context_snapshot(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME")],
    scope_prefix: Annotated[str, typer.Option(help="Only scopes starting with this (a job id); all by default.")] = "",
    installation: InstallationOption = None,
) -> None:
    """Snapshot a repository's (or a job's) contexts; prints the snapshot id."""

    def snapshot() -> None:
        with _client(command_settings(), installation, repo=repo) as client:
            taken = client.snapshot(repo, scope_prefix)
        typer.echo(str(taken.id))
        typer.echo(f"snapshot {taken.id}: {taken.contexts} context(s) of {repo}", err=True)

    _run(snapshot)


@context_app.command("restore")
def context_restore(
    snapshot_id: Annotated[int, typer.Argument(help="The snapshot's id.")],
    installation: InstallationOption = None,
) -> None:
    """Write each snapshotted context back as a new version (history is kept)."""

    def restore() -> None:
        with _client(command_settings(), installation, snapshot=snapshot_id) as client:
            restored = client.restore(snapshot_id)
        for entry in restored:
            typer.echo(f"{entry.repo}  {entry.agent}  {entry.scope}  v{entry.version}  (restores v{entry.restores})")

    _run(restore)


# --------------------------------------------------------------------------- tokens


@tokens_app.command("create")
def tokens_create(
    installation: Annotated[int, typer.Option("--installation", help="The installation the token reaches.")],
    job: Annotated[str | None, typer.Option("--job", help="Only this job's scopes: JOB and JOB:….")] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo", help="Only this repository (OWNER/NAME); a job's token: its job's, found in the store by default."
        ),
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Reads only.")] = False,
    ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 15m, 1h, 7d … (at most 30d).")] = "1h",
) -> None:
    """Create a token and print it, alone, on stdout (it is shown once)."""
    from agents import tokens
    from agents.context.documents import split_repo
    from agents.context.errors import InvalidRequest

    def create() -> None:
        try:
            lifetime = tokens.parse_ttl(ttl) if ttl else DEFAULT_TTL
        except ValueError as exc:
            raise UsageError(f"--ttl: {exc}") from exc
        try:
            reach = "/".join(split_repo(repo)) if repo is not None else None
        except InvalidRequest as exc:
            raise UsageError(f"--repo: {exc}") from exc
        store = open_store(command_settings())
        try:
            if job is not None and reach is None:
                reach = job_repository(store, installation, job)
            with store.session() as session:
                try:
                    issued = tokens.issue(
                        session,
                        installation_id=installation,
                        job_id=job,
                        repo=reach,
                        read_only=read_only,
                        ttl=lifetime,
                        created_by=cli_actor(),
                    )
                except ValueError as exc:
                    raise UsageError(str(exc)) from exc
        finally:
            store.dispose()
        scope = f"job {job}" if job else "all jobs"
        where = reach or "all repositories"
        mode = "read-only" if read_only else "read-write"
        typer.echo(
            f"token {issued.id}: installation {installation}, {where}, {scope}, {mode}, "
            f"expires {issued.expires_at.isoformat(timespec='seconds')}",
            err=True,
        )
        typer.echo(issued.token)

    _run(create)


@tokens_app.command("revoke")
def tokens_revoke(token: Annotated[str, typer.Argument(help="The token, or its id.")]) -> None:
    """Revoke a token at once, everywhere."""
    from agents import tokens
    from agents.context.cache import CACHE_PREFIX
    from bot.api.revocation import announce_revocation

    def revoke() -> None:
        try:
            ident = tokens.token_id(token)
        except tokens.InvalidToken as exc:
            raise UsageError(f"{exc}; or pass the token's id") from exc
        settings = command_settings()
        store = open_store(settings)
        try:
            with store.session() as session:
                found = tokens.revoke(session, ident, actor=cli_actor())
        finally:
            store.dispose()
        if found is None:
            typer.echo(f"error: no token {ident}", err=True)
            raise typer.Exit(1)
        if settings.redis_url is not None:
            announce_revocation(settings.redis_url, ident, prefix=CACHE_PREFIX)
        typer.echo(f"revoked {ident}")

    _run(revoke)
