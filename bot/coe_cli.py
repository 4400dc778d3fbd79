"""`waooaw coe run domain-onboarding`: run (or resume) a WowDomain CoE job.

Where the job's context lives decides how we reach it:
- on a GitHub Actions runner of `waooaw-coe.yml`, with WAOOAW_API_URL and no token, the
  run's OIDC token is traded for a job token (and a GitHub token) — no secret anywhere;
- with WAOOAW_API_URL and WAOOAW_API_TOKEN, through the Context API;
- otherwise straight on the store (WAOOAW_DATABASE_URL), e.g. on a laptop.
GitHub side effects (tracking comment, questions, the PR) go out through the publisher
when there are GitHub credentials, are printed when there are none (dry run), and are
skipped for a local job that has no repository.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from agents.context.client import ContextClient, HttpContextClient
from agents.domain.job import AGENT, DEPTHS, Depth, Job, job_at, job_id_for, new_job, put_job
from agents.store.db import Store
from bot import tenancy
from bot.coe_jobs import LOCAL_REPO, run_job
from bot.files import write_files
from bot.settings import Settings, command_settings
from bot.usage import UsageError, exit_for_usage
from bot.wiring import cli_actor, open_context_client, open_store

coe_app = typer.Typer(help="Centre of Excellence jobs.", no_args_is_help=True)

EXIT = {"done": 0, "failed": 1, "parked": 3}


@coe_app.command("run")
def run(
    kind: Annotated[str, typer.Argument(help="The CoE job to run: domain-onboarding.")],
    domain: Annotated[str | None, typer.Option(help="The domain to onboard, e.g. 'Digital Marketing'.")] = None,
    depth: Annotated[str, typer.Option(help="quick, standard or deep: the budget and rigour.")] = "standard",
    repo: Annotated[str | None, typer.Option(help="OWNER/NAME: where the job lives and the PR is opened.")] = None,
    out: Annotated[Path, typer.Option(help="Where domains/<slug>/spec.md and spec.yaml are written.")] = Path("."),
    job: Annotated[str | None, typer.Option(help="The job id (the app gives it to the workflow).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the job from its last committed step.")] = False,
) -> None:
    """Run a domain-onboarding job; prints `job <ID>` first. Exit 0 done, 3 parked, 1 failed, 2 usage."""
    settings = command_settings()
    if kind != "domain-onboarding":
        exit_for_usage(f"unknown CoE job {kind!r}: the one there is, is domain-onboarding")
    if depth not in DEPTHS:
        exit_for_usage(f"--depth takes quick, standard or deep, not {depth!r}")
    if resume and job is None:
        exit_for_usage("--resume needs --job ID")
    if job is None and domain is None:
        exit_for_usage("name the domain (--domain NAME) or the job to resume (--job ID --resume)")
    repo = repo or os.environ.get("GITHUB_REPOSITORY")  # set on every Actions runner
    try:
        contexts, store, github_token, installation = _open(settings, job, repo)
    except UsageError as error:
        exit_for_usage(str(error))
    with contexts:
        # depth is one of DEPTHS' keys: checked above
        record = _job(contexts, repo or LOCAL_REPO, installation, job, domain, cast(Depth, depth), resume)
        typer.echo(f"job {record.id}")
        result = asyncio.run(run_job(settings, contexts, store, record, github_token=github_token))
    for target in write_files(out, result.files):
        typer.echo(f"wrote {target}")
    typer.echo(result.message)
    raise typer.Exit(EXIT[result.status])


def _open(settings: Settings, job: str | None, repo: str | None) -> tuple[ContextClient, Store | None, str | None, int]:
    """The context client, the store (None over the API), a GitHub token the app handed us (if any)
    and the installation a new job belongs to (0 over the API: the token's, which the app knows)."""
    if settings.api_url is not None and settings.api_token is None and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        from bot.coe_auth import CoeAuthError, exchange

        if job is None:
            raise UsageError("on a runner the job comes from the app: pass --job ID")
        try:
            granted: dict[str, Any] = exchange(settings.api_url, job, audience=settings.oidc_audience)
        except CoeAuthError as error:
            raise UsageError(str(error)) from error
        return HttpContextClient(settings.api_url, granted["token"]), None, granted.get("github_token"), 0
    if settings.api_url is not None:
        return open_context_client(settings), None, None, 0
    store = open_store(settings)
    installation = _installation(store, repo)
    if repo is not None and not installation and settings.github_token is None and settings.has_github_credentials:
        store.dispose()
        raise UsageError(
            f"{repo} is in no installation of the WAOOAW App this database knows (the app records them from its"
            " installation events): install the App on it, or set GITHUB_TOKEN to publish with a token"
        )
    return (
        open_context_client(settings, installation_id=installation, actor=cli_actor(), store=store),
        store,
        None,
        installation,
    )


def _installation(store: Store, repo: str | None) -> int:
    """The active installation of the App that holds `repo`, as the app would pick it; else the one
    whose contexts `repo` has (a set-up without the App's events); else 0: a local job."""
    if repo is None:
        return 0
    with store.reading() as session:
        installed = tenancy.active_installation(session, repo)
    if installed is not None:
        return installed
    owners = tenancy.repo_installations(store, repo)
    return owners[0] if len(owners) == 1 else 0


def _job(
    contexts: ContextClient,
    repo: str,
    installation: int,
    job_id: str | None,
    domain: str | None,
    depth: Depth,
    resume: bool,
) -> Job:
    if job_id is not None:
        record = contexts.get(repo, AGENT, job_id)
        if record is not None:
            found = job_at(record.repo, record.data)
            # A job started locally before its repo's installation was known publishes as that installation.
            return found if found.installation_id else found.model_copy(update={"installation_id": installation})
        if resume or domain is None:
            exit_for_usage(f"there is no job {job_id} in {repo}")
    assert domain is not None
    try:
        job = new_job(
            job_id=job_id or job_id_for(str(uuid.uuid4())),
            domain=domain,
            depth=depth,
            repo=repo,
            installation_id=installation,
        )
    except ValueError as error:
        exit_for_usage(str(error))
    put_job(contexts, repo, job, expected_version=None)
    return job
