"""The Learning Curator: `/waooaw curate` (write access), and `curate` for the app's daily run.

It proposes; it never applies. Its one output is a pull request editing `.github/waooaw.yml`,
keyed by the file it edits (`curate:<digest of the file on the default branch>`): run again on
the same file it is brought up to date in place as the evidence grows, and once the file
changes (the pull request merged, or another edit) the next proposal is a new pull request.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import SlashCommand, find_command, may_act, refusal
from agents.curator.evidence import CURATOR, THRESHOLDS, Evidence, Thresholds, gather
from agents.curator.proposals import Proposal, body, edited, propose
from agents.events import Event
from agents.outputs import Comment, Output, PullRequest, Reaction
from agents.ports import RepoReader
from agents.registry import Registry
from agents.store.db import Store
from agents.vision.agent import load_rules
from agents.vision.config import CONFIG_PATH
from agents.vision.yamlsource import SourceError

CURATE_VERBS = ("curate",)


@dataclass(frozen=True)
class Curation:
    """What a run found: the pull request to publish (None: nothing to propose), or why the config could not be read."""

    pull: PullRequest | None
    proposal: Proposal | None = None
    problem: SourceError | None = None


def catalogue(registry: Registry) -> dict[str, bool]:
    """Each agent's name → whether it must be hired on a repository."""
    return {name: registry.get(name).hire_required for name in registry.names()}


async def curate(
    store: Store,
    agents: Mapping[str, bool],
    reader: RepoReader,
    installation_id: int | None,
    repo: str,
    branch: str = "HEAD",
    t: Thresholds = THRESHOLDS,
) -> Curation:
    """The pull request the outcomes on `repo` call for, read against its config on `branch` (the default)."""
    evidence = await asyncio.to_thread(_gather, store, installation_id, repo, t)
    if not (evidence.rules or evidence.agents):
        return Curation(None)
    loaded = await load_rules(reader, repo, branch)
    if isinstance(loaded, SourceError):
        return Curation(None, problem=loaded)
    config, packs = loaded
    proposal = propose(evidence, config, packs, agents, t)
    if not proposal:
        return Curation(None, proposal)
    raw = await reader.file_at(repo, branch, CONFIG_PATH)
    text = raw.decode("utf-8", errors="replace") if raw is not None else None
    new_text, kept_layout = edited(text, proposal)
    digest = hashlib.sha256((text or "").encode()).hexdigest()[:12]
    pull = PullRequest(
        repo,
        branch=f"waooaw/curate-{digest}",
        title=f"WAOOAW: changes to {CONFIG_PATH} that the outcomes here call for",
        body=body(proposal, evidence, t, kept_layout=kept_layout),
        key=f"curate:{digest}",
        files={CONFIG_PATH: new_text},
        base=None if branch == "HEAD" else branch,
        commit_message=f"Changes the outcomes on this repository call for ({CONFIG_PATH})",
    )
    return Curation(pull, proposal)


def _gather(store: Store, installation_id: int | None, repo: str, t: Thresholds) -> Evidence:
    with store.reading() as session:
        return gather(session, installation_id, repo, t)


class LearningCurator(WowAgent):
    name = CURATOR
    description = "Proposes changes to .github/waooaw.yml (a rule's severity or paths, an agent paused) from outcomes"
    wakes_on = ("issue_comment.created", "issue_comment.edited")
    commands = (
        CommandHelp(
            "/waooaw curate",
            "a pull request proposing the changes to .github/waooaw.yml that the outcomes here call for",
            needs_write=True,
        ),
    )

    def should_wake(self, event: Event) -> bool:
        return super().should_wake(event) and find_command(event.comment_body, "waooaw", CURATE_VERBS) is not None

    async def wake_up(self, event: Event) -> None:
        """No context: the evidence is in the store, the decision in the repository."""

    async def execute(self, event: Event) -> list[Output]:
        command = find_command(event.comment_body, "waooaw", CURATE_VERBS)
        assert command is not None and event.repo is not None and event.issue_number is not None
        outputs: list[Output] = [Reaction(event.repo, "eyes", comment_id=event.payload["comment"]["id"])]
        reader = self.env.reader_for(event)
        if reader is None or not await may_act(reader, event):
            return [*outputs, _reply(event, command, refusal(command, event.sender_login))]
        branch = (event.payload.get("repository") or {}).get("default_branch") or "HEAD"
        found = await curate(
            self.env.store, catalogue(self.env.registry), reader, event.installation_id, event.repo, branch
        )
        if found.pull is not None:
            outputs.append(found.pull)
        return [*outputs, _reply(event, command, answer(found))]


def answer(found: Curation) -> str:
    if found.problem is not None:
        return (
            f"I cannot read the configuration to propose changes to it:\n\n{md.code_block(found.problem)}\n\n"
            "Fix it first, then ask again."
        )
    if found.pull is None or found.proposal is None:
        return (
            "Nothing to propose: no rule and no agent on this repository is over the thresholds "
            "(docs/reputation.md, “The Learning Curator”)."
        )
    changes = [f"rule {md.code(c.rule)}: {c.what}" for c in found.proposal.rules]
    changes += [f"pause {md.code(c.agent)}" for c in found.proposal.agents]
    return "\n".join(
        [
            f"I proposed {md.plural(len(changes), 'change')} to {md.code(CONFIG_PATH)} in a pull request from "
            f"{md.code(found.pull.branch)}, with the evidence for each; merging it is the decision:",
            "",
            *(f"- {change}" for change in changes),
        ]
    )


def _reply(event: Event, command: SlashCommand, text: str) -> Comment:
    assert event.repo is not None and event.issue_number is not None
    return Comment(event.repo, event.issue_number, text, key=f"{command.verb}:{event.issue_number}")
