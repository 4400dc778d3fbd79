"""`waooaw demo`: the three user paths end to end, offline, on the embedded default.

1. a pull request of the bundled sample change, reviewed by WowVision;
2. `/waooaw help`, answered by the Concierge;
3. `/onboard-domain Digital Marketing`, started by WowDomain and run to its spec by the
   CoE runner as the `waooaw-coe.yml` workflow would run it — with a scripted model;
4. today's daily report, written with its charts, from what 1–3 recorded.

Each delivery goes the whole way a webhook does (inbox → bus → worker → agents →
outputs) on SQLite and the in-process bus. There are no GitHub credentials, so what
each step posted is printed as it would be posted (dry run): each object once, as it
ended up, since GitHub edits a comment in place. Nothing leaves the machine: the
sample is a local git repository standing in for GitHub, the model answers on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from agents.context.client import DbContextClient
from agents.domain.job import AGENT, job_at
from agents.outputs import CheckRun, Comment, Output, PullRequest, Review, WorkflowDispatch
from agents.tokens import Grant
from bot import webhooks
from bot.bus import LocalBus
from bot.coe_jobs import run_job
from bot.daily_report import ReportError, run_daily
from bot.demo.sample import (
    INSTALLATION_ID,
    MAINTAINER,
    REPO,
    SampleRepo,
    build_sample,
    comment_created,
    pull_request_opened,
)
from bot.demo.scripted_model import ScriptedModel
from bot.files import write_files
from bot.git import Git
from bot.git_reader import LocalGitReader
from bot.publish import DryRunPublisher, Origin, Published, describe
from bot.replay import push
from bot.settings import Settings
from bot.usage import UsageError
from bot.wiring import Platform, build_platform

DOMAIN = "Digital Marketing"
MARKER = ".waooaw-demo"  # says a directory holds an earlier demo's output, which a new run replaces
OWNED = (MARKER, "demo.db", "sample-repo", "payloads", "domains", "reports")
WIDTH = 79


class DemoError(Exception):
    """The demo cannot run here; the message says why."""


@dataclass
class Posted:
    agent: str
    output: Output
    origin: Origin
    times: int = 1


@dataclass
class Board:
    """The demo's publisher: a dry run that keeps what a step posted, to show each object once, as it ended up."""

    posted: dict[tuple[str, str, str], Posted] = field(default_factory=dict)

    async def publish(self, agent: str, outputs: Sequence[Output], origin: Origin) -> list[Published]:
        for output in outputs:
            key = (agent, output.kind, output.key)
            earlier = self.posted.get(key)
            self.posted[key] = Posted(agent, output, origin, earlier.times + 1 if earlier else 1)
        return [Published(output.kind, output.key, None, None) for output in outputs]

    async def close(self) -> None:
        return None

    async def show(self, stream: TextIO) -> list[Posted]:
        """Print what was posted since the last show, in the order it was first posted."""
        shown, self.posted = list(self.posted.values()), {}
        printer = DryRunPublisher(stream)
        for item in shown:
            if item.times > 1:
                print(f"(posted, then edited in place {item.times - 1} times; as it ended up:)", file=stream)
            await printer.publish(item.agent, [item.output], item.origin)
        return shown


@dataclass
class Found:
    """What the demo shows at the end: one line per user path."""

    review: str = ""
    answer: str = ""
    spec: list[Path] = field(default_factory=list)  # spec.md, spec.yaml
    pull_request: str = ""
    report: list[Path] = field(default_factory=list)  # the Markdown, then its charts


def demo_settings(database: Path, model_url: str) -> Settings:
    """The embedded default whatever the environment says: SQLite, the in-process bus, no GitHub
    credentials (so a dry run), and the scripted model in place of Claude."""
    return Settings(
        database_url=f"sqlite:///{database}",
        redis_url=None,
        api_url=None,
        api_token=None,
        github_token=None,
        app_id=None,
        app_private_key=None,
        app_private_key_path=None,
        app_bot_user_id=None,
        anthropic_api_key=SecretStr("scripted-model"),
        anthropic_base_url=model_url,
        llm_model=Settings.model_fields["llm_model"].default,
        coe_batch=False,
    )


def run_demo(out: Path, stream: TextIO | None = None) -> Found:
    """Run the four steps, writing under `out`; raises DemoError with what stopped it."""
    stream = stream or sys.stdout
    started = time.perf_counter()
    _prepare(out)
    try:
        sample = build_sample(out / "sample-repo")
    except UsageError as problem:  # no git, or git refused
        raise DemoError(str(problem)) from None
    # The scripted model is on loopback: a proxy the environment names must not carry its calls.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, (os.environ.get(name), "127.0.0.1")))
    with ScriptedModel() as model_url:
        settings = demo_settings(out / "demo.db", model_url)
        _say(
            stream,
            "WAOOAW demo: the three user paths end to end, offline — no network, no GitHub App, no API key.",
            f"Embedded default: SQLite at {_shown(out / 'demo.db')}, the in-process bus, the worker in this process.",
            "Without GitHub credentials every output is printed as it would be posted (dry run).",
            "The model is SCRIPTED, not Claude: the real Anthropic SDK calls a loopback server this demo started",
            f"({model_url}) that gives canned answers (bot/demo/scripted_answers.yaml); nothing is paid.",
            "",
        )
        found = asyncio.run(_paths(settings, out, sample, stream))
    _heading(stream, "4/4 · Today's daily report, with its charts")
    try:
        found.report = run_daily(settings, "today", REPO, out / "reports", post=False, catch_up=0)
    except ReportError as problem:  # WAOOAW_REPORT_TZ is not a time zone
        raise DemoError(str(problem)) from None
    _say(
        stream,
        f"The daily-report workflow posts it as an issue (`waooaw report daily --post --repo {REPO}`), which reads:",
        "",
        found.report[0].read_text(),
    )
    _closing(stream, out, found, time.perf_counter() - started)
    return found


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is a file: name a directory")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise DemoError(f"--out {out} holds files that are not an earlier demo's: name a new or empty directory")
    for name in OWNED:  # an earlier demo's output: the demo starts afresh
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Written by `waooaw demo`; its next run replaces what it wrote here.\n")


async def _paths(settings: Settings, out: Path, sample: SampleRepo, stream: TextIO) -> Found:
    board = Board()
    bus = LocalBus(max_deliveries=settings.bus_max_deliveries, backoff_base=0.1)
    with Git(sample.path) as git:
        # The sample repository stands in for GitHub; its maintainer has write access, as on their own repository.
        reader = LocalGitReader(git, REPO, sample.base, sample.head, maintainers={MAINTAINER["login"]})
        platform = build_platform(settings, bus=bus, publisher=board, reader_for=lambda _: reader)
        await asyncio.to_thread(platform.store.upgrade)
        try:
            found = Found()
            found.review = await _review(platform, bus, board, out, sample, stream)
            found.answer = await _help(platform, bus, board, out, stream)
            found.spec, found.pull_request = await _onboard(platform, bus, board, out, stream)
            return found
        finally:
            if platform.llm is not None:
                await platform.llm.aclose()
            platform.store.dispose()


async def _review(
    platform: Platform, bus: LocalBus, board: Board, out: Path, sample: SampleRepo, stream: TextIO
) -> str:
    _heading(stream, "1/4 · A pull request reviewed by WowVision")
    _say(
        stream,
        f"The sample change is a git repository: {_shown(sample.path)} (main ← add-discounts, "
        f"{sample.base[:7]}..{sample.head[:7]}),",
        f"standing for {REPO} on GitHub.",
    )
    await _deliver(platform, bus, out, stream, "pull_request", pull_request_opened(sample, 1))
    posted = await _show(board, stream)
    _say(
        stream,
        "Rules found all but one finding; the swallowed error in shop/prices.py went up WowVision's",
        "decision ladder to its LLM rung, answered here by the scripted model.",
        "",
    )
    review = next(item.output for item in posted if isinstance(item.output, Review))
    check = next(item.output for item in posted if isinstance(item.output, CheckRun))
    return (
        f"{REPO}#1: check run {check.name} {check.conclusion}, review {review.event} with "
        f"{len(review.comments)} inline comments, summary comment"
    )


async def _help(platform: Platform, bus: LocalBus, board: Board, out: Path, stream: TextIO) -> str:
    _heading(stream, "2/4 · /waooaw help answered")
    await _deliver(
        platform,
        bus,
        out,
        stream,
        "issue_comment",
        comment_created(2, "Where do I start?", "/waooaw help", 2001),
        name="issue_comment.help",
    )
    posted = await _show(board, stream)
    answer = next(item.output for item in posted if isinstance(item.output, Comment))
    return f"{REPO}#{answer.issue_number}: /waooaw help answered in one comment"


async def _onboard(
    platform: Platform, bus: LocalBus, board: Board, out: Path, stream: TextIO
) -> tuple[list[Path], str]:
    """The command, then the job it starts; returns the spec's files and its pull request's title."""
    _heading(stream, f"3/4 · /onboard-domain {DOMAIN}, run to its spec with a SCRIPTED model")
    _say(
        stream,
        "The model is scripted: each of the 13 WowDomain agents gets a canned deliverable from the loopback",
        "server, through the real LLM client and SDK. It is not Claude: no key is used and nothing is paid;",
        "the costs shown are what those tokens would cost.",
        "",
    )
    command = f"/onboard-domain {DOMAIN} --depth quick"
    await _deliver(
        platform,
        bus,
        out,
        stream,
        "issue_comment",
        comment_created(3, "A spec for digital marketing", command, 3001),
        name="issue_comment.onboard-domain",
    )
    posted = await _show(board, stream)
    dispatch = next(item.output for item in posted if isinstance(item.output, WorkflowDispatch))
    job_id = dispatch.inputs["job"]
    _say(
        stream,
        f"The dispatch starts {dispatch.workflow} on GitHub; here the job runs as that workflow runs it:",
        f"  waooaw coe run domain-onboarding --job {job_id} --repo {REPO}",
        "",
    )
    contexts = DbContextClient(platform.store, Grant(INSTALLATION_ID, actor="cli:waooaw-demo"))
    record = contexts.get(REPO, AGENT, job_id)
    if record is None:
        raise DemoError(f"WowDomain recorded no job {job_id}")
    result = await run_job(
        platform.settings, contexts, platform.store, job_at(record.repo, record.data), publisher=board
    )
    posted = await _show(board, stream)
    if result.status != "done":
        raise DemoError(f"the WowDomain job did not finish: {result.message}")
    written = write_files(out, result.files)
    totals = result.job.totals
    _say(
        stream,
        f"Job {job_id} done: {totals.steps} steps, {totals.model_calls} scripted model calls "
        f"(${totals.cost_usd:.4f} estimated).",
        *(f"wrote {_shown(path)}" for path in written),
    )
    pull = next(item.output for item in posted if isinstance(item.output, PullRequest))
    return written, pull.title


async def _deliver(
    platform: Platform,
    bus: LocalBus,
    out: Path,
    stream: TextIO,
    event: str,
    payload: dict[str, Any],
    *,
    name: str | None = None,
) -> None:
    """One payload, the way a webhook delivery goes; kept under `out/payloads` for `waooaw replay`."""
    name = name or f"{event}.{payload['action']}"
    path = out / "payloads" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    outcome = await push(
        platform, bus, webhooks.parse_delivery(path.read_bytes(), event=event, delivery_id=f"demo-{name}")
    )
    runs = ", ".join(f"{run['agent']} {run['status']}" for run in outcome["runs"]) or "no agent"
    _say(stream, f"Delivered {event}.{payload['action']} ({_shown(path)}): inbox → bus → worker → {runs}", "")
    if outcome["status"] != "done":
        raise DemoError(f"the {name} delivery ended {outcome['status']}: {outcome['runs']}")


async def _show(board: Board, stream: TextIO) -> list[Posted]:
    posted = await board.show(stream)
    _say(stream, "Posted (dry run):", *(f"  - {describe(item.output)[0]}" for item in posted), "")
    return posted


def _closing(stream: TextIO, out: Path, found: Found, seconds: float) -> None:
    markdown, *charts = found.report
    _heading(stream, f"Done in {seconds:.1f} s, offline")
    _say(
        stream,
        f"review   {found.review}",
        f"answer   {found.answer}",
        f"spec     {', '.join(_shown(path) for path in found.spec)}, in the pull request {found.pull_request!r}",
        f"report   {_shown(markdown)} (charts: {', '.join(path.name for path in charts)})",
        "",
        f"Files under {_shown(out)}: sample-repo (the sample change, a git repository), payloads (what was",
        "delivered), domains (the spec), reports (the report), demo.db (the demo's store). Replay one yourself:",
        f"  waooaw replay {_shown(out / 'payloads' / 'pull_request.opened.json')} --event pull_request "
        f"--repo {_shown(out / 'sample-repo')}",
    )


def _heading(stream: TextIO, title: str) -> None:
    print(f"\n{f'═══ {title} ':═<{WIDTH}}\n", file=stream)
    stream.flush()


def _say(stream: TextIO, *lines: str) -> None:
    for line in lines:
        print(line, file=stream)
    stream.flush()


def _shown(path: Path) -> str:
    """`path` as the user would type it: relative to where they are, when it is below."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
