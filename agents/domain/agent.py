"""WowDomain in the app: `/onboard-domain NAME` starts a CoE job, `/answer …` resumes a parked one.

The job itself runs on GitHub Actions (`waooaw-coe.yml`, started by `workflow_dispatch`
with the App's token); here we only check who asks, keep one job per domain, write the
job record, post the tracking comment and dispatch. Answers to a parked job's question
(or closing its issue) are recorded on the job and dispatch it again. Closing counts only
for the issue our App opened for that question (its number is on the job) and only when
the person who closed it has write access: a marker in an issue body is a hint anyone
can copy, never a credential.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from itertools import islice
from typing import Any, cast

import structlog

from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import SlashCommand, find_command, may_act, refusal
from agents.context.client import ContextClient, DbContextClient
from agents.context.repository import StaleContext
from agents.domain import tracking
from agents.domain.job import (
    ACTIVE,
    AGENT,
    DEPTHS,
    WORKFLOW,
    Depth,
    Escalation,
    Job,
    job_at,
    job_id_for,
    lock_scope,
    new_job,
    put_job,
    slugify,
)
from agents.events import MARKER_RE, Event
from agents.outputs import Comment, Output, Reaction, WorkflowDispatch
from agents.tokens import Grant

log = structlog.get_logger(__name__)

USAGE = "Usage: `/onboard-domain NAME [--depth quick|standard|deep]`, e.g. `/onboard-domain Digital Marketing`."
LEARNINGS_FROM_JOBS = 3
_ESCALATION_KEY = re.compile(r"^(?P<job>job-[0-9a-f]{10}):esc-(?P<n>\d+)$")


class WowDomain(WowAgent):
    name = AGENT
    description = "The WowDomain CoE: /onboard-domain writes a domain specification as a pull request"
    wakes_on = ("issue_comment.created", "issues.closed")
    commands = (
        CommandHelp(
            "/onboard-domain NAME [--depth quick|standard|deep]",
            "start the WowDomain CoE: a reviewed domain specification arrives as a pull request",
            True,
        ),
        CommandHelp("/answer TEXT", "answer a parked WowDomain job's question (in its `needs-human` issue)", True),
    )

    def should_wake(self, event: Event) -> bool:
        if not super().should_wake(event):
            return False
        if event.name == "issues":
            return _escalation_of(event) is not None
        return any(find_command(event.comment_body, prefix) for prefix in ("onboard-domain", "answer"))

    async def execute(self, event: Event) -> list[Output]:
        assert event.repo is not None
        contexts = DbContextClient(self.env.store, Grant(event.installation_id or 0, actor=f"agent:{self.name}"))
        if event.name == "issues":
            return await self._closed(event, contexts)
        command = find_command(event.comment_body, "onboard-domain") or find_command(event.comment_body, "answer")
        assert command is not None
        if command.prefix == "answer" and not await asyncio.to_thread(_about_a_job, contexts, event):
            return []  # an `/answer` in an issue no WowDomain job asked in is not ours to take
        outputs: list[Output] = [Reaction(repo=event.repo, content="eyes", comment_id=event.payload["comment"]["id"])]
        if not await may_act(self.env.reader_for(event), event):
            return outputs + [self._reply(event, refusal(command, event.sender_login))]
        if command.prefix == "answer":
            return outputs + await self._answer(event, command, contexts)
        return outputs + await self._onboard(event, command, contexts)

    # ------------------------------------------------------------ /onboard-domain

    async def _onboard(self, event: Event, command: SlashCommand, contexts: ContextClient) -> list[Output]:
        assert event.repo is not None and event.issue_number is not None
        try:
            domain, depth = parse_onboard(command)
            slug = slugify(domain)
        except ValueError as exc:
            return [self._reply(event, f"{exc}\n\n{USAGE}")]
        if self.env.llm is None or not self.env.llm.configured:
            return [
                self._reply(
                    event,
                    "The LLM provider is not configured on this WAOOAW installation "
                    "(`ANTHROPIC_API_KEY` is not set), so I have not started the CoE: "
                    "nothing was queued.",
                )
            ]
        job_id = job_id_for(event.delivery_id)
        running = await asyncio.to_thread(self._take_domain, contexts, event.repo, slug, job_id)
        if running is not None:
            where = f" in #{running.issue_number}" if running.issue_number else ""
            return [
                self._reply(
                    event,
                    f"WowDomain is already onboarding **{md.text(running.domain)}** (job `{running.id}`, "
                    f"{running.status}){where}; I have not started a second job.",
                )
            ]
        learnings = await asyncio.to_thread(_learnings, contexts, event.repo)
        job = new_job(
            job_id=job_id,
            domain=domain,
            depth=depth,
            repo=event.repo,
            default_branch=(event.payload.get("repository") or {}).get("default_branch"),
            installation_id=event.installation_id or 0,
            issue_number=event.issue_number,
            requested_by=event.sender_login,
            learnings=learnings,
        )
        job = await asyncio.to_thread(_create, contexts, job)
        return [
            Comment(
                repo=event.repo, issue_number=event.issue_number, body=tracking.comment_body(job, set()), key=job.id
            ),
            WorkflowDispatch(repo=event.repo, workflow=WORKFLOW, key=f"{job.id}:start", inputs={"job": job.id}),
        ]

    def _take_domain(self, contexts: ContextClient, repo: str, slug: str, job_id: str) -> Job | None:
        """Point the domain's lock at this job, or return the active job that holds it."""
        for _ in range(5):
            lock = contexts.get(repo, AGENT, lock_scope(slug))
            if lock is not None and lock.data.get("job") != job_id:
                holder = contexts.get(repo, AGENT, lock.data["job"])
                if holder is not None and holder.data.get("status") in ACTIVE:
                    return job_at(holder.repo, holder.data)
            if lock is not None and lock.data.get("job") == job_id:
                return None  # a retried delivery: the job is ours
            try:
                contexts.put(
                    repo,
                    AGENT,
                    lock_scope(slug),
                    {"job": job_id},
                    expected_version=lock.version if lock else None,
                    summary=f"domain {slug} → {job_id}",
                )
                return None
            except StaleContext:
                continue  # another command took it meanwhile: look again
        raise StaleContext(f"the lock of domain {slug} kept changing")

    # ------------------------------------------------------------ /answer and closed issues

    async def _answer(self, event: Event, command: SlashCommand, contexts: ContextClient) -> list[Output]:
        found = await asyncio.to_thread(_parked_job, contexts, event)
        if found is None:
            return [self._reply(event, "There is no WowDomain question waiting for an answer here.")]
        job, n = found
        escalation = job.by_key(f"esc-{n}")
        assert escalation is not None
        text = " ".join(command.args).strip()
        changes: dict[str, Any] = {"status": "answered", "answer": text, "answered_by": event.sender_login}
        budget = _budget_answer(text) if escalation.kind == "budget" else None
        # The job's own budget spent: only a higher one resumes it. An operator's limit: any answer (a budget too).
        if escalation.kind == "budget" and (escalation.limit is None or budget is not None):
            spent = await asyncio.to_thread(contexts.job_spend, job.repo, job.id)
            if budget is None or budget <= spent:
                return [
                    self._reply(
                        event,
                        f"To go on, the job needs a budget above what it has spent "
                        f"(${spent:.4f}): answer `/answer budget <USD>`, e.g. "
                        f"`/answer budget {max(job.budget_usd * 2, 1):.2f}`.",
                    )
                ]
            changes["budget_usd"] = budget
        return await asyncio.to_thread(self._resume, contexts, event, job, n, changes)

    async def _closed(self, event: Event, contexts: ContextClient) -> list[Output]:
        assert event.repo is not None and event.issue_number is not None
        found = _escalation_of(event)
        assert found is not None
        job_id, n = found
        record = await asyncio.to_thread(contexts.get, event.repo, AGENT, job_id)
        if record is None:
            return []
        job = job_at(record.repo, record.data)
        escalation = job.by_key(f"esc-{n}")
        if escalation is None or escalation.status != "open":
            return []  # already answered (we closed it ourselves) or unknown
        if not await self._is_the_questions_issue(event, escalation):
            log.warning(
                "wowdomain.close_ignored",
                repo=event.repo,
                issue=event.issue_number,
                job=job.id,
                question=n,
                question_issue=escalation.issue_number,
                closed_by=event.sender_login,
                reason="not the issue our App opened for this question",
            )
            return []
        if not await may_act(self.env.reader_for(event), event):
            log.info(
                "wowdomain.close_refused",
                repo=event.repo,
                issue=event.issue_number,
                job=job.id,
                closed_by=event.sender_login,
            )
            return [
                Comment(
                    repo=event.repo,
                    issue_number=event.issue_number,
                    key=f"{job.id}:{escalation.key}:close-refused",
                    body=_close_refused(job, event.sender_login),
                )
            ]
        return await asyncio.to_thread(
            self._resume, contexts, event, job, n, {"status": "closed", "answered_by": event.sender_login}
        )

    async def _is_the_questions_issue(self, event: Event, escalation: Escalation) -> bool:
        """Whether the closed issue is the one our App opened for this question: the number the
        job recorded when it was published, and GitHub names our App as its author."""
        if escalation.issue_number != event.issue_number:
            return False
        reader = self.env.reader_for(event)
        return reader is not None and await reader.written_by_us(event.payload["issue"])

    def _resume(self, contexts: ContextClient, event: Event, job: Job, n: int, changes: dict[str, Any]) -> list[Output]:
        assert event.repo is not None
        budget = changes.pop("budget_usd", None)
        cancel = changes["status"] == "closed" and job.by_key(f"esc-{n}").kind == "budget"  # type: ignore[union-attr]  # _parked_job found it open

        def change(current: Job) -> Job:
            escalations = [e.model_copy(update=changes) if e.n == n else e for e in current.escalations]
            update: dict[str, Any] = {"escalations": escalations, "status": "cancelled" if cancel else "queued"}
            if budget is not None:
                update["budget_usd"] = budget
            return current.model_copy(update=update)

        job = change_job(contexts, event.repo, job.id, change)
        escalation = job.by_key(f"esc-{n}")
        assert escalation is not None
        # A step's scope is `<job>:<step>`: the listing alone names them (search carries no contents).
        steps = {c.scope.partition(":")[2] for c in contexts.search_all(repo=event.repo, scope_prefix=job.id + ":")}
        outputs: list[Output] = [tracking.escalation_issue(job, escalation)]  # closed now
        if job.issue_number is not None:
            outputs.append(
                Comment(
                    repo=event.repo, issue_number=job.issue_number, body=tracking.comment_body(job, steps), key=job.id
                )
            )
        if not cancel:
            outputs.append(
                WorkflowDispatch(repo=event.repo, workflow=WORKFLOW, key=f"{job.id}:resume-{n}", inputs={"job": job.id})
            )
        if event.name == "issue_comment":
            word = "Cancelled" if cancel else "Thanks — resuming"
            outputs.append(self._reply(event, f"{word} job `{job.id}` ({md.text(job.domain)})."))
        return outputs

    def _reply(self, event: Event, body: str) -> Comment:
        assert event.repo is not None and event.issue_number is not None
        return Comment(
            repo=event.repo, issue_number=event.issue_number, body=body, key=f"reply:{event.payload['comment']['id']}"
        )


def parse_onboard(command: SlashCommand) -> tuple[str, Depth]:
    """`/onboard-domain Digital Marketing --depth quick` → ("Digital Marketing", "quick")."""
    words: list[str] = []
    depth: Depth = "standard"
    args = list(command.args)
    while args:
        word = args.pop(0)
        if word == "--depth" or word.startswith("--depth="):
            value = word.split("=", 1)[1] if "=" in word else (args.pop(0) if args else "")
            if value not in DEPTHS:
                raise ValueError(
                    f"`--depth` takes quick, standard or deep, not {md.code(value) if value else '(nothing)'}."
                )
            depth = cast(Depth, value)  # one of DEPTHS' keys, checked above
        elif word.startswith("--"):
            raise ValueError(f"{md.code(word)} is not an option of /onboard-domain.")
        else:
            words.append(word)
    if not words:
        raise ValueError("Which domain? Name it after the command.")
    return " ".join(words), depth


def _create(contexts: ContextClient, job: Job) -> Job:
    try:
        put_job(contexts, job.repo, job, expected_version=None)
        return job
    except StaleContext:  # a retried delivery created it already
        existing = contexts.get(job.repo, AGENT, job.id)
        assert existing is not None
        return job_at(existing.repo, existing.data)


def change_job(contexts: ContextClient, repo: str, job_id: str, change: Callable[[Job], Job], attempts: int = 5) -> Job:
    """Read the job record, change it, write it back (again if another writer got there first)."""
    for _ in range(attempts):
        record = contexts.get(repo, AGENT, job_id)
        if record is None:
            raise LookupError(f"no job {job_id} in {repo}")
        job = change(job_at(record.repo, record.data))
        try:
            put_job(contexts, repo, job, expected_version=record.version)
            return job
        except StaleContext:
            continue
    raise StaleContext(f"job {job_id}: the record kept changing")


def _learnings(contexts: ContextClient, repo: str) -> list[str]:
    """The lessons of the latest jobs on this repo: the Learning Curator's output, reused as context.

    Only a job of this repository teaches it: a lesson counts if the job its scope names has its
    record here (one written under this repository's name by another repository's job token,
    before tokens were bound to their repository, does not)."""
    found = contexts.search_contents(repo=repo, agent="learning-curator")
    ours = (context for context in found if _job_of_repo(contexts, repo, context.scope.partition(":")[0]))
    lessons: list[str] = []
    for context in islice(ours, LEARNINGS_FROM_JOBS):
        for lesson in (context.data.get("package") or {}).get("deliverable", {}).get("lessons", []):
            if lesson not in lessons:
                lessons.append(lesson)
    return lessons[:20]


def _job_of_repo(contexts: ContextClient, repo: str, job_id: str) -> bool:
    record = contexts.get(repo, AGENT, job_id)
    return record is not None and record.data.get("repo") == repo


def _escalation_of(event: Event) -> tuple[str, int] | None:
    """The (job, question number) an escalation issue belongs to, from the marker in its body."""
    body = (event.payload.get("issue") or {}).get("body") or ""
    for match in MARKER_RE.finditer(body):
        if match["agent"] == AGENT and match["kind"] == "issue":
            key = _ESCALATION_KEY.match(match["key"])
            if key:
                return key["job"], int(key["n"])
    return None


def _parked_job(contexts: ContextClient, event: Event) -> tuple[Job, int] | None:
    """The job whose open question this comment answers: by the escalation issue's marker, else by
    the issue the job was started in."""
    found = _escalation_of(event)
    if found is not None:
        assert event.repo is not None  # an issue comment's event names its repository
        record = contexts.get(event.repo, AGENT, found[0])
        if record is not None:
            job = job_at(record.repo, record.data)
            escalation = job.by_key(f"esc-{found[1]}")
            if escalation is not None and escalation.status == "open":
                return job, found[1]
        return None
    for context in contexts.search_contents(
        repo=event.repo, agent=AGENT, tags=[f"issue:{event.issue_number}", "status:parked"]
    ):
        job = job_at(context.repo, context.data)
        open_question = job.open_escalation()
        if open_question is not None:
            return job, open_question.n
    return None


def _about_a_job(contexts: ContextClient, event: Event) -> bool:
    """Whether this issue is a WowDomain question, or one a job was started in."""
    if _escalation_of(event) is not None:
        return True
    return bool(contexts.search(repo=event.repo, agent=AGENT, tags=[f"issue:{event.issue_number}"], limit=1).items)


def _close_refused(job: Job, login: str | None) -> str:
    # Reopening it ourselves would fight whoever closed it; the job's state says what counts.
    return (
        f"Sorry @{login or 'there'}, closing this question needs write access to this repository, so job "
        f"`{job.id}` stays parked and its question stays open. Someone with write access can answer it "
        "here with `/answer …`, or reopen this issue and close it."
    )


def _budget_answer(text: str) -> float | None:
    match = re.fullmatch(r"budget\s+\$?(\d+(?:\.\d+)?)", text.strip(), re.IGNORECASE)
    return float(match.group(1)) if match else None
