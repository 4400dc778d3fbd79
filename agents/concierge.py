"""The Concierge: answers `/waooaw help` and `/waooaw status` in issue and PR comments.

It reacts 👀 at once and keeps one answer comment per issue and command, edited in
place, so asking again refreshes the answer rather than adding noise.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import find_command
from agents.context.repository import ContextKey, latest
from agents.events import Event
from agents.hires import Standing
from agents.hiring import Hiring
from agents.outputs import Comment, Output, Reaction
from agents.reputation import Score, scores, summary
from agents.store.tables import InboxRecord

CONCIERGE_VERBS = ("help", "status")
LISTED_AGENTS = 100  # rows of the agents table; a comment holds at most 65,536 characters


def _here(name: str, standing: Standing) -> str:
    """The hired identity on this repository, in a few words."""
    if not standing.hired:
        return f"not hired (`/waooaw hire {name}`)"
    hired = "hired" if standing.hired_by == "config" else "on by default"
    state = standing.state.value + (" here" if standing.state_set == "repo" else "")
    budget = f", ${standing.budget_usd:g} budget" if standing.budget_usd is not None else ""
    return f"{hired}, {state}{budget}"


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
        standings = await asyncio.to_thread(self._standings, event)
        if command.verb == "help":
            body = self._help(standings)
        else:
            body = await self._status(event.repo, event.installation_id, standings)
        return [
            Reaction(repo=event.repo, content="eyes", comment_id=comment_id),
            Comment(
                repo=event.repo, issue_number=event.issue_number, body=body, key=f"{command.verb}:{event.issue_number}"
            ),
        ]

    def _standings(self, event: Event) -> dict[str, Standing]:
        with self.env.store.reading() as session:
            return self.env.registry.standings(session, event.installation_id, event.repo)

    def _help(self, standings: dict[str, Standing]) -> str:
        lines = [
            "### WAOOAW — what you can ask here",
            "",
            "| command | what it does | who may run it |",
            "|---|---|---|",
        ]
        for name, standing in standings.items():
            if not standing.wakes and name != Hiring.name:
                continue  # its commands do nothing here
            for command in self.env.registry.get(name).commands:
                who = "write access" if command.needs_write else "anyone"
                lines.append(f"| `{command.usage}` | {command.summary} | {who} |")
        lines += ["", "**Agents**: what each does, and whether it works on this repository", ""]
        lines += self._agents_table(standings)
        return "\n".join(lines)

    def _agents_table(self, standings: dict[str, Standing], reputation: dict[str, Score] | None = None) -> list[str]:
        """Both identities of each agent: the marketplace one (name, CoE, description) and the hired one here,
        with its reputation here when given."""
        header = ["agent", "CoE", "what it does", "on this repository"]
        header += ["reputation here"] if reputation is not None else []
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, standing in list(standings.items())[:LISTED_AGENTS]:
            agent = self.env.registry.get(name)
            cells = [md.code(name), md.text(agent.coe or "—"), md.text(agent.description), _here(name, standing)]
            if reputation is not None:
                cells.append(summary(reputation.get(name)))
            lines.append("| " + " | ".join(cells) + " |")
        if len(standings) > LISTED_AGENTS:
            lines += ["", f"…and {len(standings) - LISTED_AGENTS} more: `waooaw agents list --repo` shows them all."]
        return lines

    async def _status(self, repo: str, installation_id: int | None, standings: dict[str, Standing]) -> str:
        depth = await self.env.queue_depth()
        with self.env.store.reading() as session:
            reputation = scores(session, installation_id, repo, evidence=0)
        lines = ["### WAOOAW status", ""]
        lines += self._agents_table(standings, reputation)
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
            # The installation too: a repository's name is not its identity (another installation,
            # a transfer, a second GitHub host may hold the same name).
            recent = session.execute(
                select(InboxRecord.event, InboxRecord.action, InboxRecord.status, InboxRecord.received_at)
                .where(InboxRecord.installation_id == installation_id, InboxRecord.repo == repo)
                .order_by(InboxRecord.received_at.desc())
                .limit(10)
            ).all()
            vision = (
                latest(session, ContextKey(installation_id, repo, "wowvision", "repo"))
                if installation_id is not None
                else None
            )
            ignored = dict(vision.data.get("suppressions", {})) if vision is not None else {}
        if not recent:
            lines.append("_none yet_")
        for event_name, action, status, received_at in recent:
            kind = f"{event_name}.{action}" if action else event_name
            lines.append(f"- {md.code(kind)} — {status}, {received_at:%Y-%m-%d %H:%M:%S} UTC")
        if ignored:
            lines += ["", "**Rules ignored on this repository** (`/wowvision ignore`)", ""]
            # Who ignored a rule is named, not mentioned: each status would ping them again.
            lines += [
                f"- {md.code(rule)} by {md.text('@' + str(item['by']))}: {md.text(item['reason'])} ({item['at'][:10]})"
                for rule, item in sorted(ignored.items())
            ]
        return "\n".join(lines)
