"""The one error a command shows as its user's to fix."""


class UsageError(Exception):
    """Bad arguments or settings, something the user must fix before the command can run: exit 2 with the message."""
