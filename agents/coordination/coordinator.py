"""A CoE's coordinator: routes each task to ONE Responsible agent by the CoE's RACI matrix.

One class, made once per CoE (`coordinator_for(raci)`, registered as `<coe>-coordinator`). It wakes on

- an issue labelled `coe:<coe>` (`issues.labeled`): the task kind is the issue's label that names a
  task kind of the matrix, else the matrix's first;
- the command `/coe <coe> <task-kind>` in an issue's comment (write access needed);
- a `request` or `handoff` message to the role `<coe>:<task-kind>`, or to `<coe>:coordinator`
  with the task kind in its body (`{"task": "bug-fix", ...}`).

It picks the Responsible among the matrix's `responsible` that are hired and active on the
repository — the best reputation there first, then the fewest open tasks — and takes the task's
lock (agents/coordination/assignments.py): only the run that takes it sends the work on, as a
`handoff` to the Responsible, a `request` to sign off to the Accountable, a `request` to each
Consulted and an `inform` to each Informed. A `result` from the Responsible asks the Accountable
to sign off; one from the Accountable closes the task, unless it refuses the work: a body with
`conclusion: "failure"` (WowVision's verdict, agents/vision/signoff.py) or `approved: false`. A
refusal sends an open task back to `assigned` and the Responsible a `request` with `rework: true`
and the verdict, once per refusal; its deadline keeps running. A done task stays done. A task past
its deadline comes back as an `escalate` message from the sweep (bot/coordination.py): the
coordinator opens an issue labelled `needs-human`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import structlog
from sqlalchemy.orm import Session

from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import find_command, may_act, refusal
from agents.coordination import assignments
from agents.coordination.raci import COORDINATOR_ROLE, Raci, TaskRaci
from agents.events import Event
from agents.messages import MessageKind, Received, correlation_for, is_role
from agents.outputs import Comment, IssueReport, Message, Output
from agents.reputation.queries import scores
from agents.reputation.score import unjudged
from agents.store.tables import TaskAssignment

log = structlog.get_logger(__name__)

NEEDS_HUMAN = "needs-human"  # as the CoE's escalation issues (agents/domain/tracking.py)
DEFAULT_DEADLINE = timedelta(days=3)  # a task whose request names no deadline
LABEL_PREFIX = "coe:"
RELEASE_TASK = "release-post"  # a published release is this task for a CoE whose matrix has it
# `Fixes #12`, `closes #3`, `Resolved #7`: GitHub's keywords that close an issue when the pull request merges
_CLOSES = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)\b", re.IGNORECASE)


class Coordinator(WowAgent):
    """Made per CoE by `coordinator_for`; `raci` is its CoE's matrix."""

    raci: ClassVar[Raci]
    wakes_on = (
        "issues.labeled",
        "issue_comment.created",
        "agent_message.request",
        "agent_message.handoff",
        "agent_message.result",
        "agent_message.escalate",
        "pull_request.opened",
        "pull_request.closed",
        "release.published",
    )

    def should_wake(self, event: Event) -> bool:
        if not super().should_wake(event):
            return False
        if event.kind == "issues.labeled":
            return (event.payload.get("label") or {}).get("name") == LABEL_PREFIX + self.raci.coe
        if event.kind == "issue_comment.created":
            command = find_command(event.comment_body, "coe")
            return command is not None and command.verb == self.raci.coe
        if event.name == "pull_request":
            return bool(closed_issues(event))
        if event.kind == "release.published":
            release = event.payload.get("release") or {}
            return RELEASE_TASK in self.raci.tasks and not release.get("prerelease") and bool(release.get("tag_name"))
        return True

    async def execute(self, event: Event) -> list[Output]:
        if event.installation_id is None or event.repo is None:
            return []
        received = Received.of(event)
        if received is not None:
            if received.kind == "result":
                return await asyncio.to_thread(self._on_result, event, received)
            if received.kind == "escalate":
                body = received.body if isinstance(received.body, dict) else {}
                return [self._escalation_issue(event.repo, received.correlation_id, body)]
            kind = self._kind_of_message(received)
            if kind is None:
                log.info("coordinator.unknown_task", coe=self.raci.coe, to=received.to)
                return []
            deadline = received.deadline or _due(event)
            return await asyncio.to_thread(self.route, event, kind, received.correlation_id, deadline, received.body)
        if event.kind == "issue_comment.created":
            return await self._on_command(event)
        if event.name == "pull_request":
            return await asyncio.to_thread(self._on_fix, event)
        if event.kind == "release.published":
            return await asyncio.to_thread(self._on_release, event)
        labels = [label.get("name") for label in (event.payload.get("issue") or {}).get("labels") or []]
        kind = next((name for name in labels if name in self.raci.tasks), next(iter(self.raci.tasks)))
        deadline = _due(event)
        return await asyncio.to_thread(self.route, event, kind, correlation_for(event), deadline, None)

    def _kind_of_message(self, received: Received) -> str | None:
        role = received.to.partition(":")[2]
        if role in self.raci.tasks:
            return role
        asked = received.body.get("task") if isinstance(received.body, dict) else None
        return asked if role == COORDINATOR_ROLE and isinstance(asked, str) and asked in self.raci.tasks else None

    async def _on_command(self, event: Event) -> list[Output]:
        command = find_command(event.comment_body, "coe")
        number = event.issue_number
        if command is None or number is None or event.repo is None:
            return []
        comment_id = (event.payload.get("comment") or {}).get("id")
        key = f"coe-command:{comment_id}"
        if not await may_act(self.env.reader_for(event), event):
            return [Comment(event.repo, number, refusal(command, event.sender_login), key)]
        kind = command.args[1] if len(command.args) > 1 else next(iter(self.raci.tasks))
        if kind not in self.raci.tasks:
            kinds = ", ".join(md.code(k) for k in self.raci.tasks)
            return [Comment(event.repo, number, f"The {self.raci.coe} CoE has no task {md.code(kind)}: {kinds}.", key)]
        deadline = _due(event)
        return await asyncio.to_thread(self.route, event, kind, correlation_for(event), deadline, None)

    def candidates(self, task: TaskRaci) -> tuple[list[str], list[str]]:
        """The agents that may be Responsible (for a role: the agents answering to it), and the roles
        that no agent answers to."""
        agents: list[str] = []
        roles: list[str] = []
        for name in task.responsible:
            if not is_role(name):
                agents.append(name)
                continue
            members = [agent.name for agent in self.env.registry.agents() if name in agent.roles]
            agents += members
            if not members:
                roles.append(name)
        return list(dict.fromkeys(agents)), roles

    def pick(self, installation_id: int, repo: str, names: Sequence[str]) -> str | None:
        """The one Responsible: hired and active on the repository, best reputation, then least load."""
        registry = self.env.registry
        with self.env.store.reading() as session:
            standing = registry.standings(session, installation_id, repo, [registry.get(name) for name in names])
            awake = [name for name in names if standing[name].wakes]
            if not awake:
                return None
            found = scores(session, installation_id, repo, evidence=0)
            load = assignments.loads(session, installation_id, repo, awake)
        return min(awake, key=lambda name: (-(found.get(name) or unjudged(name, repo)).value, load[name], name))

    def route(
        self, event: Event, kind: str, correlation: str, deadline: datetime, asked: Any, key: str | None = None
    ) -> list[Output]:
        """Assign the task of `kind` the event brings, once; the messages that send the work on."""
        assert event.installation_id is not None and event.repo is not None
        task_raci = self.raci.tasks[kind]
        number = event.issue_number
        task = assignments.Task(
            installation_id=event.installation_id,
            repo=event.repo,
            coe=self.raci.coe,
            key=key or (f"{kind}:#{number}" if number is not None else f"{kind}:{correlation}"),
            kind=kind,
            correlation_id=correlation,
            delivery_id=event.delivery_id,
            issue_number=number,
            deadline=deadline,
        )
        agents, roles = self.candidates(task_raci)
        responsible = self.pick(task.installation_id, task.repo, agents) if agents else None
        if responsible is None and roles:
            responsible = roles[0]  # nobody here answers to it as an agent: the role's people do
        if responsible is None:
            return self._nobody(task, task_raci)
        with self.env.store.session() as session:
            claim = assignments.claim(session, task, responsible, task_raci.accountable)
        if not claim.won:
            log.info("coordinator.already_assigned", coe=task.coe, task=task.key, responsible=claim.responsible)
            return []
        log.info("coordinator.assigned", coe=task.coe, task=task.key, responsible=claim.responsible)
        return self.messages(task, task_raci, claim, asked)

    def messages(self, task: assignments.Task, raci: TaskRaci, claim: assignments.Claim, asked: Any) -> list[Output]:
        body: dict[str, Any] = {
            "task": task.kind,
            "coe": task.coe,
            "assignment": claim.id,
            "responsible": claim.responsible,
            "accountable": raci.accountable,
            "reply_to": self.name,
        }
        if task.issue_number is not None:
            body["issue"] = task.issue_number
        if asked is not None:
            body["request"] = asked

        def message(kind: MessageKind, to: str, key: str, extra: dict[str, Any] | None = None) -> Message:
            sent = {**body, **extra} if extra else body
            return Message(kind, to, sent, correlation_id=claim.correlation_id, deadline=task.deadline, key=key)

        out: list[Output] = [message("handoff", claim.responsible, "responsible")]
        out.append(message("request", raci.accountable, "accountable", {"sign_off": True}))
        out += [message("request", name, f"consulted:{name}") for name in raci.consulted]
        out += [message("inform", name, f"informed:{name}") for name in raci.informed]
        return out

    def _on_result(self, event: Event, received: Received) -> list[Output]:
        assert event.installation_id is not None and event.repo is not None
        out: list[Output] = []
        with self.env.store.session() as session:
            for row in assignments.of_conversation(
                session, event.installation_id, event.repo, self.raci.coe, received.correlation_id
            ):
                if received.sender == row.accountable:
                    out += self._on_verdict(session, row, received)
                elif received.sender == row.responsible and assignments.advance(session, row.id, "delivered"):
                    body = {"task": row.kind, "assignment": row.id, "sign_off": True, "result": received.body}
                    out.append(Message("request", row.accountable, body, key=f"sign-off:{row.id}"))
        return out

    def _on_verdict(self, session: Session, row: TaskAssignment, received: Received) -> list[Output]:
        """The Accountable's result: the sign-off that closes the task, or a refusal that hands it back."""
        if not refused(received.body):
            if assignments.advance(session, row.id, "done"):
                log.info("coordinator.signed_off", coe=row.coe, task=row.task_key, by=received.sender)
            return []
        if row.state not in assignments.OPEN:
            return []
        reopened = assignments.reopen(session, row.id)
        log.info("coordinator.refused", coe=row.coe, task=row.task_key, by=received.sender, reopened=reopened)
        # Sent whether or not this run reopened it: a retry of this delivery finds the task reopened
        # already, and the key, unique to the refusal, lets the edge record the request once.
        body = {"task": row.kind, "assignment": row.id, "rework": True, "verdict": received.body}
        key = f"rework:{row.id}:{received.id}"
        return [Message("request", row.responsible, body, row.correlation_id, key=key)]

    def _on_fix(self, event: Event) -> list[Output]:
        """A pull request that closes an issue with an open task here: the Accountable is asked to review
        it when it opens, and to sign the task off once it is merged (the Responsible's result)."""
        assert event.installation_id is not None and event.repo is not None
        pull = event.payload.get("pull_request") or {}
        number = pull.get("number")
        if not isinstance(number, int):
            return []
        merged = event.action == "closed" and bool(pull.get("merged"))
        if event.action == "closed" and not merged:
            return []
        out: list[Output] = []
        with self.env.store.session() as session:
            for issue in closed_issues(event):
                for row in assignments.on_issue(session, event.installation_id, event.repo, self.raci.coe, issue):
                    body = {"task": row.kind, "assignment": row.id, "issue": issue, "pull_request": number}
                    body["head_sha"] = (pull.get("head") or {}).get("sha")
                    correlation = row.correlation_id
                    if not merged:
                        out.append(
                            Message(
                                "request",
                                row.accountable,
                                {**body, "review": True},
                                correlation,
                                key=f"review:{row.id}",
                            )
                        )
                    elif assignments.fixed(session, row.id, number):
                        body = {**body, "sign_off": True, "result": {"merged": True}}
                        out.append(Message("request", row.accountable, body, correlation, key=f"sign-off:{row.id}"))
        return out

    def _on_release(self, event: Event) -> list[Output]:
        """A release is the CoE's `release-post` task, on the conversation of the first fix it ships
        (a task elsewhere whose issue a merged pull request closed), naming every fix."""
        assert event.installation_id is not None and event.repo is not None
        release = event.payload.get("release") or {}
        tag = str(release.get("tag_name"))
        with self.env.store.reading() as session:
            fixes = assignments.unreleased_fixes(session, event.installation_id, event.repo, tag)
        correlation = fixes[0].correlation_id if fixes else correlation_for(event)
        shipped = [
            {"issue": row.issue_number, "pull_request": row.pull_number, "correlation_id": row.correlation_id}
            for row in fixes
        ]
        deadline = _due(event)
        named = {"release": tag, "release_url": release.get("html_url"), "release_name": release.get("name")}
        asked = {**named, "fixes": shipped}
        out = self.route(event, RELEASE_TASK, correlation, deadline, asked, key=f"{RELEASE_TASK}:{tag}")
        if out:
            with self.env.store.session() as session:
                assignments.released(session, [row.id for row in fixes], tag)
        return out

    def _escalation_issue(self, repo: str, correlation: str, body: dict[str, Any]) -> IssueReport:
        task, responsible = str(body.get("task", "?")), str(body.get("responsible", "?"))
        issue, deadline = body.get("issue"), str(body.get("deadline", "?"))
        lines = [
            f"The {md.text(self.raci.coe)} CoE's task {md.code(task)}"
            + (f" on #{int(issue)}" if isinstance(issue, int) else "")
            + f" was due by {md.text(deadline)} and is not done.",
            "",
            f"- Responsible: {md.code(responsible)}",
            f"- Accountable: {md.code(str(body.get('accountable', '?')))}",
            f"- Conversation: `waooaw messages list --correlation {md.text(correlation)}`",
            "",
            "A person is needed: finish the task, or hand it to someone who can.",
        ]
        return IssueReport(
            repo=repo,
            title=f"Needs a person: {self.raci.coe} task {task} is not done",
            body="\n".join(lines),
            key=f"escalation:{body.get('assignment', correlation)}",
            labels=(NEEDS_HUMAN,),
        )

    def _nobody(self, task: assignments.Task, raci: TaskRaci) -> list[Output]:
        """No Responsible is hired and active here: a person is needed now."""
        log.info("coordinator.nobody", coe=task.coe, task=task.key)
        body = {
            "task": task.kind,
            "coe": task.coe,
            "responsible": "nobody hired and active",
            "accountable": raci.accountable,
            "issue": task.issue_number,
            "deadline": datetime.now(UTC).isoformat(timespec="seconds"),
            "assignment": task.key,
        }
        issue = self._escalation_issue(task.repo, task.correlation_id, body)
        return [issue, Message("escalate", raci.accountable, body, correlation_id=task.correlation_id, key="nobody")]


def coordinator_for(raci: Raci) -> type[Coordinator]:
    """The coordinator of `raci`'s CoE: `<coe>-coordinator`, answering to the CoE's roles."""
    tasks = ", ".join(raci.tasks)
    attributes = {
        "name": f"{raci.coe}-coordinator",
        "description": f"Routes the {raci.coe} CoE's tasks ({tasks}) to one agent each, by its RACI matrix",
        "coe": raci.coe,
        "roles": raci.roles(),
        "raci": raci,
        "commands": (
            CommandHelp(
                f"/coe {raci.coe} [TASK]",
                f"route this issue as one of the {raci.coe} CoE's tasks ({tasks}; the first by default) "
                "to one agent, by its RACI matrix",
                needs_write=True,
            ),
        ),
        "__module__": __name__,
    }
    return type(f"{raci.coe.title().replace('-', '')}Coordinator", (Coordinator,), attributes)


def refused(verdict: Any) -> bool:
    """Whether an Accountable's result refuses the work rather than signing it off."""
    return isinstance(verdict, dict) and (verdict.get("conclusion") == "failure" or verdict.get("approved") is False)


def closed_issues(event: Event) -> list[int]:
    """The issues a pull request's body closes (GitHub's keywords), in order, each once."""
    pull = event.payload.get("pull_request") or {}
    body = pull.get("body") if isinstance(pull, dict) else None
    found = [int(n) for n in _CLOSES.findall(body)] if isinstance(body, str) else []
    return list(dict.fromkeys(found))


def _due(event: Event) -> datetime:
    """A task's default deadline from when its event came in (SQLite hands back the UTC wall clock)."""
    at = event.received_at if event.received_at.tzinfo is not None else event.received_at.replace(tzinfo=UTC)
    return at + DEFAULT_DEADLINE
