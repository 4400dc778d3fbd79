"""The Concierge: answers `/waooaw help` and `/waooaw status` in issue and PR comments.

It reacts 👀 at once and keeps one answer comment per issue and command, edited in
place, so asking again refreshes the answer rather than adding noise.
"""

from __future__ import annotations

from sqlalchemy import select

from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import find_command
from agents.context.models import ContextVersion
from agents.events import Event
from agents.outputs import Comment, Output, Reaction
from agents.reputation import scores, summary
from agents.store.tables import InboxRecord

CONCIERGE_VERBS = ("help", "status")


class Concierge(WowAgent):
    name = "concierge"
    description = "Answers /waooaw help and /waooaw status"
    wakes_on = ("issue_comment.created", "issue_comment.edited")
    commands = (
        CommandHelp("/waooaw help", "what you can ask WAOOAW on this repository"),
        CommandHelp("/waooaw status", "agents and their state, queue depth, last events"),
    )

    def should_wake(self, event: Event) -> bool:
        return super().should_wake(event) and find_command(event.comment_body, "waooaw", CONCIERGE_VERBS) is not None

    async def execute(self, event: Event) -> list[Output]:
        command = find_command(event.comment_body, "waooaw", CONCIERGE_VERBS)
        assert command is not None and event.repo is not None and event.issue_number is not None
        comment_id = event.payload["comment"]["id"]
        body = self._help() if command.verb == "help" else await self._status(event.repo, event.installation_id)
        return [
            Reaction(repo=event.repo, content="eyes", comment_id=comment_id),
            Comment(
                repo=event.repo, issue_number=event.issue_number, body=body, key=f"{command.verb}:{event.issue_number}"
            ),
        ]

    def _help(self) -> str:
        lines = [
            "### WAOOAW — what you can ask here",
            "",
            "| command | what it does | who may run it |",
            "|---|---|---|",
        ]
        states = self.env.registry.states()
        for name in self.env.registry.names():
            for command in self.env.registry.get(name).commands:
                who = "write access" if command.needs_write else "anyone"
                lines.append(f"| `{command.usage}` | {command.summary} | {who} |")
        lines += ["", "**Agents on this installation**", ""]
        for name, state in states.items():
            lines.append(f"- `{name}` ({state.value}) — {self.env.registry.get(name).description}")
        return "\n".join(lines)

    async def _status(self, repo: str, installation_id: int | None) -> str:
        depth = await self.env.queue_depth()
        with self.env.store.reading() as session:
            reputation = scores(session, installation_id, repo, evidence=0)
        lines = ["### WAOOAW status", "", "| agent | state | reputation here |", "|---|---|---|"]
        lines += [
            f"| `{name}` | {state.value} | {summary(reputation.get(name))} |"
            for name, state in self.env.registry.states().items()
        ]
        lines += [
            "",
            "_Reputation: the score (0–1) from what became of the agent's outputs in this repository "
            "— outcomes for (+) and against (−)._",
            "",
            f"**Queue:** {depth if depth is not None else 'unknown'} waiting or in flight (this request included)",
            "",
            f"**Last events on {md.text(repo)}**",
            "",
        ]
        with self.env.store.session() as session:
            recent = session.execute(
                select(InboxRecord.event, InboxRecord.action, InboxRecord.status, InboxRecord.received_at)
                .where(InboxRecord.repo == repo)
                .order_by(InboxRecord.received_at.desc())
                .limit(10)
            ).all()
            suppressions = session.scalars(
                select(ContextVersion.data)
                .where(ContextVersion.repo == repo, ContextVersion.agent == "wowvision", ContextVersion.scope == "repo")
                .order_by(ContextVersion.version.desc())
                .limit(1)
            ).first()
        if not recent:
            lines.append("_none yet_")
        for event_name, action, status, received_at in recent:
            kind = f"{event_name}.{action}" if action else event_name
            lines.append(f"- {md.code(kind)} — {status}, {received_at:%Y-%m-%d %H:%M:%S} UTC")
        ignored = (suppressions or {}).get("suppressions", {})
        if ignored:
            lines += ["", "**Rules ignored on this repository** (`/wowvision ignore`)", ""]
            # Who ignored a rule is named, not mentioned: each status would ping them again.
            lines += [
                f"- {md.code(rule)} by {md.text('@' + str(item['by']))}: {md.text(item['reason'])} ({item['at'][:10]})"
                for rule, item in sorted(ignored.items())
            ]
        return "\n".join(lines)
