"""`waooaw vision check`: WowVision on a local git range — no GitHub, no keys.

The config comes from the BASE commit's `.github/waooaw.yml`, as on a pull request:
a range cannot relax the rules applied to itself. Exit 0 clean, 1 when a finding is
at error level, 2 on a usage error, a bad ref or an invalid config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Annotated, NoReturn, Optional

import typer

vision_app = typer.Typer(help="WowVision Prime: policy reviews.", no_args_is_help=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class UsageProblem(Exception):
    """Something the user must fix before a review can run (exit 2)."""


class Git:
    """`git` in one repository, through subprocess."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._batch: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, timeout=300)
        except FileNotFoundError:
            raise UsageProblem("git is not installed (or not on PATH)") from None

    def commit(self, ref: str) -> str | None:
        found = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return found.stdout.decode().strip() if found.returncode == 0 else None

    def default_branch(self) -> str | None:
        """origin's HEAD, else main, else master (local, then origin's)."""
        remote_head = self.run("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
        candidates = ["main", "master", "origin/main", "origin/master"]
        if remote_head.returncode == 0:
            candidates.insert(0, remote_head.stdout.decode().strip().removeprefix("refs/remotes/"))
        return next((ref for ref in candidates if self.commit(ref)), None)

    def merge_base(self, one: str, two: str) -> str | None:
        found = self.run("merge-base", one, two)
        return found.stdout.decode().strip() if found.returncode == 0 else None

    def diff(self, base: str, head: str) -> bytes:
        found = self.run(
            "-c",
            "core.quotePath=false",
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "--unified=3",
            base,
            head,
            "--",
        )
        if found.returncode != 0:
            raise UsageProblem(f"git diff failed: {found.stderr.decode(errors='replace').strip()}")
        return found.stdout

    def read(self, commit: str, path: str) -> bytes | None:
        """A file's bytes at `commit`, or None when it is not there (one `cat-file --batch` for all reads)."""
        if "\n" in path:
            return None
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(f"{commit}:{path}\n".encode())
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) != 3:  # "<name> missing" or "<name> ambiguous"
            return None
        data = self._batch.stdout.read(int(header[2]))
        self._batch.stdout.read(1)  # the newline after the contents
        return data if header[1] == b"blob" else None

    def __enter__(self) -> Git:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._batch is not None:
            assert self._batch.stdin is not None
            self._batch.stdin.close()
            self._batch.wait(timeout=30)


def _range(git: Git, base: str | None, head: str) -> tuple[str, str]:
    head_sha = git.commit(head)
    if head_sha is None:
        raise UsageProblem(f"--head {head!r} is not a commit in {git.repo}")
    if base is not None:
        base_sha = git.commit(base)
        if base_sha is None:
            raise UsageProblem(f"--base {base!r} is not a commit in {git.repo}")
        return base_sha, head_sha
    default = git.default_branch()
    if default is None:
        raise UsageProblem("cannot tell the default branch (no origin/HEAD, main or master); pass --base REF")
    merge_base = git.merge_base(default, head_sha)
    if merge_base is None:
        raise UsageProblem(f"{head!r} shares no history with {default!r}; pass --base REF")
    return merge_base, head_sha


@vision_app.command("check")
def check(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository to review.")] = Path("."),
    base: Annotated[
        Optional[str], typer.Option("--base", help="Base commit (default: the merge-base with the default branch).")
    ] = None,
    head: Annotated[str, typer.Option("--head", help="Head commit.")] = "HEAD",
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, json or markdown.")
    ] = OutputFormat.text,
) -> None:
    """Review the changes between --base and --head against the policy packs."""
    from agents.vision import CONFIG_PATH, ConfigError, PolicyError, parse_config, parse_diff, resolve_packs, review
    from agents.vision.render import render_markdown, render_text, to_json

    try:
        top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True)
    except FileNotFoundError:
        _usage("git is not installed (or not on PATH)")
    if top.returncode != 0:
        _usage(f"{repo} is not a git repository")
    with Git(Path(top.stdout.decode().strip())) as git:
        try:
            base_sha, head_sha = _range(git, base, head)
            config = parse_config(git.read(base_sha, CONFIG_PATH), CONFIG_PATH)
            packs = resolve_packs(config, lambda path: git.read(base_sha, path))
            diff = parse_diff(git.diff(base_sha, head_sha))
        except UsageProblem as exc:
            _usage(str(exc))
        except (ConfigError, PolicyError) as exc:
            _usage(f"the configuration at the base commit {base_sha[:7]} cannot be used; nothing was reviewed.\n{exc}")
        result = review(
            diff, lambda path: git.read(head_sha, path), config, packs, files_at_base=lambda path: git.read(base_sha, path)
        )
    if config.extends:
        typer.echo(
            f"note: `extends: {config.extends}` is not fetched by a local check; {CONFIG_PATH} alone applies", err=True
        )
    label = f"{base_sha[:7]}..{head_sha[:7]}"
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(to_json(result, base=base_sha, head=head_sha), indent=2))
    elif output_format is OutputFormat.markdown:
        typer.echo(render_markdown(result, title=f"WowVision {label}"), nl=False)
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        typer.echo(render_text(result, color=color, range_label=label), nl=False, color=color)
    raise typer.Exit(1 if result.failed else 0)


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
