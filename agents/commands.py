"""Slash commands in issue and PR comments: `/waooaw status`, `/wowvision recheck RULE`.

Parsing lives here so agents can read their own commands; who may run which
command is checked at the edge (bot.commands), through the GitHub API.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from agents import markdown as md
from agents.events import Event
from agents.ports import RepoReader

# A command starts a line, as GitHub users type it; a quoted line ("> /cmd") starts with ">" and never matches.
_COMMAND_LINE = re.compile(r"^[ \t]*/(?P<prefix>[a-z][a-z0-9-]*)(?P<rest>[^\n]*)$", re.MULTILINE)


@dataclass(frozen=True)
class SlashCommand:
    prefix: str  # "waooaw", "wowvision", "onboard-domain"
    args: tuple[str, ...]

    @property
    def verb(self) -> str | None:
        return self.args[0].lower() if self.args else None


def parse_commands(body: str) -> list[SlashCommand]:
    commands = []
    for match in _COMMAND_LINE.finditer(body or ""):
        try:
            args = shlex.split(match.group("rest"))
        except ValueError:
            args = match.group("rest").split()
        commands.append(SlashCommand(match.group("prefix").lower(), tuple(args)))
    return commands


def find_command(body: str, prefix: str, verbs: tuple[str, ...] | None = None) -> SlashCommand | None:
    """The first command with this prefix (and, if given, one of these verbs)."""
    for command in parse_commands(body):
        if command.prefix == prefix and (verbs is None or command.verb in verbs):
            return command
    return None


WRITE_ROLES = frozenset({"admin", "maintain", "write"})


async def may_act(reader: RepoReader | None, event: Event) -> bool:
    """Whether the comment's author may run commands that act or spend (write access or more).

    Checked through GitHub's API, never from the payload. Without GitHub credentials
    nobody's permission can be checked, so nobody may.
    """
    if reader is None or event.repo is None or event.sender_login is None:
        return False
    return await reader.permission(event.repo, event.sender_login) in WRITE_ROLES


def refusal(command: SlashCommand, login: str | None) -> str:
    """The polite no, addressed to whoever asked; what they typed is shown as inert code."""
    typed = " ".join(("/" + command.prefix, *command.args))
    return (
        f"Sorry @{login or 'there'}, {md.code(typed)} needs write access to this repository, so I have not run it. "
        "Ask a maintainer to run it, or see `/waooaw help` for what anyone may ask."
    )
