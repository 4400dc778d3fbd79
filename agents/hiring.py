"""Hiring: which agents work on a repository, as its default branch's `.github/waooaw.yml` says.

    agents:
      enable: [tech-support]      # off until hired: every spec agent
      disable: [wowvision]        # on unless disabled: the platform's Python agents

The file on the default branch is the decision. When a push to the default branch changes
it, or the App is installed on a repository, the Hiring agent reads it and writes each
agent's hired identity there (agents/hires.py). `/waooaw hire NAME` and `/waooaw fire NAME`
(write access) open the pull request that edits the file: merging it is the hiring.

An invalid file, or one naming an agent the catalogue does not have, changes nothing: the
agents stay as they were, and an issue names the line to fix (closed once it applies).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from agents import hires
from agents import markdown as md
from agents.base import CommandHelp, WowAgent
from agents.commands import SlashCommand, find_command, may_act, refusal
from agents.config_edit import edit
from agents.events import Event
from agents.outputs import Comment, IssueReport, Output, PullRequest, Reaction
from agents.ports import RepoReader
from agents.vision.config import CONFIG_PATH, ConfigError, RepoConfig, parse_config

log = structlog.get_logger(__name__)

HIRING_VERBS = ("hire", "fire")
LISTED_IN_REPLIES = 50  # agents a reply lists by name; the rest are counted


class Hiring(WowAgent):
    name = "hiring"
    description = "Applies the agents section of .github/waooaw.yml; /waooaw hire and fire open the PR that edits it"
    wakes_on = (
        "push",
        "installation.created",
        "installation_repositories.added",
        "issue_comment.created",
        "issue_comment.edited",
    )
    commands = (
        CommandHelp("/waooaw hire NAME", "a pull request that hires an agent on this repository", needs_write=True),
        CommandHelp("/waooaw fire NAME", "a pull request that lets an agent go from this repository", needs_write=True),
    )

    def should_wake(self, event: Event) -> bool:
        if not super().should_wake(event):
            return False
        if event.name == "push":
            return _config_changed(event.payload)
        if event.name == "issue_comment":
            return find_command(event.comment_body, "waooaw", HIRING_VERBS) is not None
        return True

    async def execute(self, event: Event) -> list[Output]:
        if event.name == "issue_comment":
            return await self._command(event)
        reader = self.env.reader_for(event)
        if reader is None:
            log.info("hiring.no_github", delivery=event.delivery_id, reason="no GitHub credentials to read the config")
            return []
        if event.name == "push":
            assert event.repo is not None
            branch = (event.payload.get("repository") or {}).get("default_branch") or "HEAD"
            return await self._apply(event, reader, event.repo, branch)
        key = "repositories" if event.name == "installation" else "repositories_added"
        repos = [item["full_name"] for item in event.payload.get(key) or [] if isinstance(item, dict)]
        for repo in repos:  # no repository of its own to report on: problems are logged
            await self._apply(event, reader, repo, "HEAD")
        return []

    # ------------------------------------------------------------------ the config applied

    async def _apply(self, event: Event, reader: RepoReader, repo: str, ref: str) -> list[Output]:
        text = await reader.file_at(repo, ref, CONFIG_PATH)
        try:
            config = self._checked(parse_config(text))
        except ConfigError as error:
            log.warning("hiring.config_invalid", repo=repo, error=str(error))
            if repo != event.repo:
                return []
            self.context["config_issue"] = True
            return [IssueReport(repo, f"WAOOAW: {CONFIG_PATH} cannot be applied", _invalid(error), key="agents-config")]
        await asyncio.to_thread(self._record_hires, event.installation_id, repo, config)
        log.info("hiring.applied", repo=repo, enable=config.agents.enable, disable=config.agents.disable)
        if repo == event.repo and self.context.pop("config_issue", False):
            body = f"{md.code(CONFIG_PATH)} applies again: the agents it names are hired as it says."
            title = f"WAOOAW: {CONFIG_PATH} cannot be applied"
            return [IssueReport(repo, title, body, key="agents-config", state="closed")]
        return []

    def _checked(self, config: RepoConfig) -> RepoConfig:
        """Every agent the section names is in the catalogue, and the Hiring agent is not disabled."""
        known = set(self.env.registry.names())
        for key in ("enable", "disable", "budgets"):
            for position, name in enumerate(getattr(config.agents, key)):
                if name not in known:
                    where = ("agents", key, name) if key == "budgets" else ("agents", key, position)
                    raise config.fail(where, f"no agent named {name!r}; {self._catalogue_names()}")
        if self.name in config.agents.disable:
            position = config.agents.disable.index(self.name)
            message = f"{self.name} applies this section: it cannot be disabled"
            raise config.fail(("agents", "disable", position), message)
        return config

    def _record_hires(self, installation_id: int | None, repo: str, config: RepoConfig) -> None:
        agents = config.agents
        with self.env.store.session() as session:
            hires.apply_config(session, installation_id, repo, agents.enable, agents.disable, agents.budgets)

    def _catalogue_names(self) -> str:
        names = self.env.registry.names()
        shown = ", ".join(names[:LISTED_IN_REPLIES])
        more = f" and {len(names) - LISTED_IN_REPLIES} more" if len(names) > LISTED_IN_REPLIES else ""
        return f"the catalogue has {shown}{more}"

    # ------------------------------------------------------------------ /waooaw hire, /waooaw fire

    async def _command(self, event: Event) -> list[Output]:
        command = find_command(event.comment_body, "waooaw", HIRING_VERBS)
        assert command is not None and event.repo is not None and event.issue_number is not None
        reaction = Reaction(event.repo, "eyes", comment_id=event.payload["comment"]["id"])
        reader = self.env.reader_for(event)
        if reader is None or not await may_act(reader, event):
            return [reaction, _reply(event, command, refusal(command, event.sender_login))]
        name = command.args[1].lower() if len(command.args) > 1 else ""
        if name not in self.env.registry.names() or name == self.name:
            return [reaction, _reply(event, command, self._unknown(command, name))]
        return [reaction, *await self._propose(event, reader, command, name)]

    async def _propose(self, event: Event, reader: RepoReader, command: SlashCommand, name: str) -> list[Output]:
        """The pull request that edits the config, and the answer saying so (or why there is none)."""
        repo = event.repo or ""
        branch = (event.payload.get("repository") or {}).get("default_branch") or "HEAD"
        hire = command.verb == "hire"
        agent = self.env.registry.get(name)
        text = await reader.file_at(repo, branch, CONFIG_PATH)
        try:
            decoded = text.decode("utf-8", errors="replace") if text is not None else None
            edited = edit(decoded, name, hire=hire, hire_required=agent.hire_required)
        except ConfigError as error:
            return [_reply(event, command, f"{_invalid(error)}\n\nFix it first, then ask again.")]
        if edited is None:
            already = "hired" if hire else "not hired"
            said = f"{md.code(name)} is {already} here already, as {md.code(CONFIG_PATH)} says."
            return [_reply(event, command, said)]
        action = "Hire" if hire else "Fire"
        lists = "; ".join(
            f"`{key}`: {', '.join(md.code(item) for item in items) or 'none'}"
            for key, items in (("enable", edited.enable), ("disable", edited.disable))
        )
        coe = f" ({md.text(agent.coe)})" if agent.coe else ""
        body = [
            f"{action} {md.code(name)}{coe} on this repository, as {md.text('@' + (event.sender_login or 'someone'))} "
            f"asked in #{event.issue_number}. Merging this pull request is the decision; closing it changes nothing.",
            "",
            f"{md.code(name)}: {md.text(agent.description)}",
            "",
            f"{md.code(CONFIG_PATH)} after the change: {lists}.",
        ]
        if not edited.kept_layout:
            body += ["", "The file's layout could not be kept: it is written out from its data, without comments."]
        pull = PullRequest(
            repo,
            branch=f"waooaw/{command.verb}-{name}",
            title=f"WAOOAW: {action.lower()} {name}",
            body="\n".join(body),
            key=f"{command.verb}:{name}",
            files={CONFIG_PATH: edited.text},
            base=None if branch == "HEAD" else branch,
            commit_message=f"{action} {name} ({CONFIG_PATH})",
        )
        answer = (
            f"I opened a pull request that edits {md.code(CONFIG_PATH)} to {command.verb} {md.code(name)} "
            "on this repository: merging it is the decision."
        )
        return [pull, _reply(event, command, answer)]

    def _unknown(self, command: SlashCommand, name: str) -> str:
        typed = " ".join(("/" + command.prefix, *command.args))
        what = f"There is no agent named {md.code(name)} to {command.verb}" if name else "Which agent?"
        lines = [f"{what} ({md.code(typed)}). The catalogue:", "", "| agent | CoE | what it does |", "|---|---|---|"]
        for agent in self.env.registry.agents()[:LISTED_IN_REPLIES]:
            if agent.name != self.name:
                lines.append(f"| {md.code(agent.name)} | {md.text(agent.coe or '—')} | {md.text(agent.description)} |")
        remaining = len(self.env.registry.names()) - LISTED_IN_REPLIES
        if remaining > 0:
            lines += ["", f"…and {remaining} more: `waooaw agents list` shows them all."]
        return "\n".join(lines)


def _config_changed(payload: dict[str, Any]) -> bool:
    """A push to the default branch that touches the config (or rewrites history, which may)."""
    branch = (payload.get("repository") or {}).get("default_branch")
    if not branch or payload.get("ref") != f"refs/heads/{branch}" or payload.get("deleted"):
        return False
    if payload.get("forced"):
        return True
    for commit in payload.get("commits") or []:
        if not isinstance(commit, dict):
            continue
        if any(CONFIG_PATH in (commit.get(key) or []) for key in ("added", "modified", "removed")):
            return True
    return False


def _reply(event: Event, command: SlashCommand, body: str) -> Comment:
    """The one answer per issue and verb, edited in place when asked again."""
    assert event.repo is not None and event.issue_number is not None
    return Comment(event.repo, event.issue_number, body, key=f"{command.verb}:{event.issue_number}")


def _invalid(error: ConfigError) -> str:
    return (
        f"### {md.code(error.source)} cannot be applied\n\n{md.code_block(error)}\n\n"
        "The agents hired on this repository stay as they were until the file on the default branch is fixed."
    )
