"""The one error a command shows as its user's to fix, and how a command says so."""

from typing import NoReturn

import typer


class UsageError(Exception):
    """Bad arguments or settings, something the user must fix before the command can run: exit 2 with the message."""


def exit_for_usage(message: str) -> NoReturn:
    """Say what to fix and exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
