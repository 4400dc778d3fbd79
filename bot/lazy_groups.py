"""A root command whose sub-command groups are imported only when one of them runs.

`waooaw --help` lists every group from a line of text, and `waooaw vision check` loads
`bot.vision_cli` alone: neither pays for the Anthropic SDK, githubkit, SQLAlchemy or
the CoE code that other groups import (seconds on a cold start, against milliseconds
for a local review).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import ClassVar

import typer

# typer carries its own click (it no longer depends on the click package): TyperGroup's methods take its classes
from typer import _click as click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyGroup:
    target: str  # "package.module:attribute", a typer.Typer
    help: str  # what `waooaw --help` shows for it: the group's own help, which a test keeps equal

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        return typer.main.get_group(getattr(importlib.import_module(module), attribute))


@dataclass(frozen=True)
class LazyCommand(LazyGroup):
    """One command rather than a group: `target` names its function (typer-annotated)."""

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        single = typer.Typer()
        single.command()(getattr(importlib.import_module(module), attribute))
        return typer.main.get_command(single)


class LazyRoot(TyperGroup):
    """Subclass it with `groups` set, and pass it as `typer.Typer(cls=...)`."""

    groups: ClassVar[dict[str, LazyGroup]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        loaded = super().list_commands(ctx)
        return loaded + [name for name in self.groups if name not in loaded]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.groups and cmd_name not in self.commands:
            # what a listing needs (a name and a line of help); running it goes through resolve_command
            return TyperCommand(cmd_name, help=self.groups[cmd_name].help)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        if name in self.groups and name not in self.commands:
            self.add_command(self.groups[name].load(), name)
        return super().resolve_command(ctx, args)
