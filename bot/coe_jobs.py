"""A WowDomain CoE job run in this process: its model, where its outputs go, and the files it writes.

`waooaw coe run` runs one this way, and so does `waooaw demo`.
"""

from __future__ import annotations

import tempfile
from typing import Any

from pydantic import SecretStr

from agents.context.client import ContextClient
from agents.domain.checkpoints import JobNotFound
from agents.domain.job import AGENT, Job
from agents.domain.runner import BatchPolicy, CoeRunner, JobResult, Publish, publish_nothing
from agents.llm import LLMNotConfigured
from agents.store.db import Store
from bot.publish import Origin, Publisher
from bot.settings import Settings
from bot.wiring import freeze_startup_heap, make_llm, make_publisher

LOCAL_REPO = "local/workspace"  # where a job without --repo keeps its context


async def run_job(
    settings: Settings,
    contexts: ContextClient,
    store: Store | None,
    job: Job,
    *,
    github_token: str | None = None,
    publisher: Publisher | None = None,
) -> JobResult:
    """Run the job with the configured model (its steps resume from the last committed one).

    Its outputs go to `publisher` when given, else to GitHub with credentials, printed without
    (dry run), nowhere for a local job."""
    llm = make_llm(settings, store)
    publisher = publisher or _publisher(settings, store, job, github_token)
    publish = publish_nothing if publisher is None else _publishing(publisher, job)
    freeze_startup_heap()  # a job runs for minutes or hours: its steps should not wait on full collections
    try:
        batch = BatchPolicy(settings.coe_batch_poll, settings.coe_batch_wait) if settings.coe_batch else None
        return await CoeRunner(contexts, llm, job.id, job.repo, publish=publish, batch=batch).run()
    except LLMNotConfigured as error:
        return JobResult("failed", job, f"error: {error}")
    except JobNotFound as error:
        return JobResult("failed", job, f"error: {error}")
    finally:
        if publisher is not None:
            await publisher.close()
        if llm is not None:
            await llm.aclose()


def _publishing(publisher: Publisher, job: Job) -> Publish:
    origin = Origin(delivery_id=f"coe:{job.id}", installation_id=job.installation_id or None)

    async def publish(outputs: Any) -> Any:
        return await publisher.publish(AGENT, outputs, origin)

    return publish


def _publisher(settings: Settings, store: Store | None, job: Job, github_token: str | None) -> Publisher | None:
    """Where the job's outputs go: GitHub, printed (dry run), or nowhere (None: a local job)."""
    from bot.github import github_clients

    if job.repo == LOCAL_REPO:
        return None
    if github_token is not None:
        settings = settings.model_copy(
            update={
                "github_token": SecretStr(github_token),
                "app_id": None,
                "app_private_key": None,
                "app_private_key_path": None,
            }
        )
    clients = github_clients(settings)
    if clients is not None and store is None:
        # Over the API the runner has no database: a scratch one remembers what this run published,
        # and the markers on GitHub cover what earlier runs did.
        store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='waooaw-coe-')}/published.db")
        store.upgrade()
    return make_publisher(store, clients)
