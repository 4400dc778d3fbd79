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
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from pydantic import SecretStr

from agents.context.client import ContextClient, HttpContextClient
from agents.store.db import Store
from agents.domain.job import AGENT, DEPTHS, Job, job_id_for, new_job, tags_for
from agents.domain.runner import BatchPolicy, CoeRunner, JobNotFound, Publish, RunResult, publish_nothing
from agents.events import Event
from agents.llm import LLMNotConfigured
from bot import tenancy
from bot.context_cli import UsageError, cli_actor, open_context_client, open_store, repo_installations
from bot.settings import Settings, cli_settings

if TYPE_CHECKING:
    from bot.outputs import Publisher

coe_app = typer.Typer(help="Centre of Excellence jobs.", no_args_is_help=True)

EXIT = {"done": 0, "failed": 1, "parked": 3}
LOCAL_REPO = "local/workspace"  # where a job without --repo keeps its context


@coe_app.command("run")
def run(
    kind: Annotated[str, typer.Argument(help="The CoE job to run: domain-onboarding.")],
    domain: Annotated[Optional[str], typer.Option(help="The domain to onboard, e.g. 'Digital Marketing'.")] = None,
    depth: Annotated[str, typer.Option(help="quick, standard or deep: the budget and rigour.")] = "standard",
    repo: Annotated[Optional[str], typer.Option(help="OWNER/NAME: where the job lives and the PR is opened.")] = None,
    out: Annotated[Path, typer.Option(help="Where domains/<slug>/spec.md and spec.yaml are written.")] = Path("."),
    job: Annotated[Optional[str], typer.Option(help="The job id (the app gives it to the workflow).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the job from its last committed step.")] = False,
) -> None:
    """Run a domain-onboarding job; prints `job <ID>` first. Exit 0 done, 3 parked, 1 failed, 2 usage."""
    from bot import logging as waooaw_logging

    settings = cli_settings()
    waooaw_logging.configure(settings.log_level)
    if kind != "domain-onboarding":
        _usage(f"unknown CoE job {kind!r}: the one there is, is domain-onboarding")
    if depth not in DEPTHS:
        _usage(f"--depth takes quick, standard or deep, not {depth!r}")
    if resume and job is None:
        _usage("--resume needs --job ID")
    if job is None and domain is None:
        _usage("name the domain (--domain NAME) or the job to resume (--job ID --resume)")
    repo = repo or os.environ.get("GITHUB_REPOSITORY")  # set on every Actions runner
    try:
        contexts, store, github_token, installation = _open(settings, job, repo)
    except UsageError as error:
        _usage(str(error))
    with contexts:
        record = _job(contexts, repo or LOCAL_REPO, installation, job, domain, depth, resume)
        typer.echo(f"job {record.id}")
        result = asyncio.run(run_job(settings, contexts, store, record, github_token=github_token))
    for target in write_files(out, result.files):
        typer.echo(f"wrote {target}")
    typer.echo(result.message)
    raise typer.Exit(EXIT[result.status])


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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
    return open_context_client(settings, installation_id=installation, actor=cli_actor(), store=store), store, None, installation


def _installation(store: Store, repo: str | None) -> int:
    """The active installation of the App that holds `repo`, as the app would pick it; else the one
    whose contexts `repo` has (a set-up without the App's events); else 0: a local job."""
    if repo is None:
        return 0
    with store.reading() as session:
        installed = tenancy.active_installation(session, repo)
    if installed is not None:
        return installed
    owners = repo_installations(store, repo)
    return owners[0] if len(owners) == 1 else 0


def _job(
    contexts: ContextClient, repo: str, installation: int, job_id: str | None, domain: str | None, depth: str, resume: bool
) -> Job:
    if job_id is not None:
        record = contexts.get(repo, AGENT, job_id)
        if record is not None:
            found = Job.model_validate(record.data)
            # A job started locally before its repo's installation was known publishes as that installation.
            return found if found.installation_id else found.model_copy(update={"installation_id": installation})
        if resume or domain is None:
            _usage(f"there is no job {job_id} in {repo}")
    assert domain is not None
    try:
        job = new_job(job_id=job_id or job_id_for(str(uuid.uuid4())), domain=domain, depth=depth, repo=repo,  # type: ignore[arg-type]
                      installation_id=installation)  # fmt: skip
    except ValueError as error:
        _usage(str(error))
    contexts.put(repo, AGENT, job.id, job.data(), expected_version=None, summary=f"{job.domain}: queued", tags=tags_for(job))
    return job


def write_files(out: Path, files: dict[str, str]) -> list[Path]:
    """The job's files (`domains/<slug>/spec.md`, `spec.yaml`) under `out`."""
    written = []
    for path, text in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


async def run_job(settings: Settings, contexts: ContextClient, store: Store | None, job: Job, *,
                  github_token: str | None = None, publisher: Publisher | None = None) -> RunResult:
    """Run the job with the configured model (its steps resume from the last committed one).

    Its outputs go to `publisher` when given, else to GitHub with credentials, printed without
    (dry run), nowhere for a local job."""
    from bot.app import freeze_startup_heap, make_llm

    llm = make_llm(settings, store)
    publisher = publisher or _publisher(settings, store, job, github_token)
    publish = publish_nothing if publisher is None else _publishing(publisher, job)
    freeze_startup_heap()  # a job runs for minutes or hours: its steps should not wait on full collections
    try:
        batch = BatchPolicy(settings.coe_batch_poll, settings.coe_batch_wait) if settings.coe_batch else None
        return await CoeRunner(contexts, llm, job.id, job.repo, publish=publish, batch=batch).run()
    except LLMNotConfigured as error:
        return RunResult("failed", job, f"error: {error}")
    except JobNotFound as error:
        return RunResult("failed", job, f"error: {error}")
    finally:
        if publisher is not None:
            await publisher.close()
        if llm is not None:
            await llm.aclose()


def _publishing(publisher: Publisher, job: Job) -> Publish:
    event = Event(delivery_id=f"coe:{job.id}", name="workflow_dispatch", payload={}, repo=job.repo,
                  installation_id=job.installation_id or None)  # fmt: skip

    async def publish(outputs: Any) -> Any:
        return await publisher.publish(AGENT, outputs, event)

    return publish


def _publisher(settings: Settings, store: Store | None, job: Job, github_token: str | None) -> Publisher | None:
    """Where the job's outputs go: GitHub, printed (dry run), or nowhere (None: a local job)."""
    from bot.github import github_clients
    from bot.outputs import DryRunPublisher, GitHubPublisher

    if job.repo == LOCAL_REPO:
        return None
    if github_token is not None:
        settings = settings.model_copy(update={"github_token": SecretStr(github_token), "app_id": None, "app_private_key": None,
                                           "app_private_key_path": None})
    clients = github_clients(settings)
    if clients is None:
        return DryRunPublisher()
    # Over the API the runner has no database: a scratch one remembers what this run published,
    # and the markers on GitHub cover what earlier runs did.
    records = store or Store(f"sqlite:///{tempfile.mkdtemp(prefix='waooaw-coe-')}/published.db")
    if store is None:
        records.upgrade()
    return GitHubPublisher(records, clients)
