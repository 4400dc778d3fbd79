"""`waooaw vision check`: WowVision on a local git range — no GitHub, no keys.

The config comes from the BASE commit's `.github/waooaw.yml`, as on a pull request:
a range cannot relax the rules applied to itself. `--staged` reviews what `git commit`
would record (the index against HEAD), which is what a pre-commit hook sees. Exit 0
clean, 1 when a finding is at error level, 2 on a usage error, a bad ref or an invalid
config.

This module is imported for every `waooaw vision` command: it imports nothing heavy at
the top (tests/integration/test_vision_cli.py checks that the SDKs stay out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

if TYPE_CHECKING:
    from agents.vision import Pack, RepoConfig, ReviewResult

vision_app = typer.Typer(help="WowVision Prime: policy reviews.", no_args_is_help=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"
    github = "github"


INDEX = ":0"  # the index as a revision: `:0:path` is a staged file, as `sha:path` is a committed one


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

    def empty_tree(self) -> str:
        """The id of the empty tree in this repository's hash (the base of a first commit)."""
        return subprocess.run(
            ["git", "-C", str(self.repo), "hash-object", "-t", "tree", "--stdin"],
            input=b"",
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode().strip()

    def diff(self, base: str, head: str) -> bytes:
        """`git diff base head`; with head INDEX, the staged changes against base."""
        sides = ["--cached", base] if head == INDEX else [base, head]
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
            *sides,
            "--",
        )
        if found.returncode != 0:
            raise UsageProblem(f"git diff failed: {found.stderr.decode(errors='replace').strip()}")
        return found.stdout

    def read(self, commit: str, path: str) -> bytes | None:
        """A file's bytes at `commit` (or INDEX), or None when it is not there (one `cat-file --batch` for all)."""
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


def toplevel(path: Path) -> Path:
    """The work tree of the git repository that holds `path`."""
    try:
        top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True)
    except FileNotFoundError:
        raise UsageProblem("git is not installed (or not on PATH)") from None
    if top.returncode != 0:
        raise UsageProblem(f"{path} is not a git repository")
    return Path(top.stdout.decode().strip())


def commit_range(git: Git, base: str | None, head: str) -> tuple[str, str]:
    """(base, head) as commits: `base` None is the merge-base of `head` with the default branch."""
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


def _range(git: Git, base: str | None, head: str | None, staged: bool) -> tuple[str, str]:
    """(base, head) of what `check` reviews: the index against its base with --staged."""
    if staged:
        if head is not None:
            raise UsageProblem("--staged reviews the index: it takes no --head")
        return _staged_base(git, base), INDEX
    return commit_range(git, base, head or "HEAD")


def _staged_base(git: Git, base: str | None) -> str:
    """What the index is compared with: --base, else HEAD, else (before the first commit) nothing."""
    if base is not None:
        base_sha = git.commit(base)
        if base_sha is None:
            raise UsageProblem(f"--base {base!r} is not a commit in {git.repo}")
        return base_sha
    return git.commit("HEAD") or git.empty_tree()


@vision_app.command("check")
def check(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository to review.")] = Path("."),
    base: Annotated[
        Optional[str],
        typer.Option(
            "--base", help="Base commit (default: the merge-base with the default branch; HEAD with --staged)."
        ),
    ] = None,
    head: Annotated[Optional[str], typer.Option("--head", help="Head commit (default: HEAD).")] = None,
    staged: Annotated[
        bool, typer.Option("--staged", help="Review the staged changes (the index against HEAD), as a pre-commit hook.")
    ] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="text, json, markdown, sarif (SARIF 2.1.0) or github (workflow commands)."),
    ] = OutputFormat.text,
) -> None:
    """Review the changes between --base and --head (or the staged ones) against the policy packs."""
    from agents.vision import CONFIG_PATH, ConfigError, PolicyError, parse_config, parse_diff, resolve_packs, review

    try:
        root = toplevel(repo)
    except UsageProblem as exc:
        _usage(str(exc))
    with Git(root) as git:
        try:
            base_sha, head_ref = _range(git, base, head, staged)
            config = parse_config(git.read(base_sha, CONFIG_PATH), CONFIG_PATH)
            packs = resolve_packs(config, lambda path: git.read(base_sha, path))
            diff = parse_diff(git.diff(base_sha, head_ref))
        except UsageProblem as exc:
            _usage(str(exc))
        except (ConfigError, PolicyError) as exc:
            _usage(f"the configuration at the base commit {base_sha[:7]} cannot be used; nothing was reviewed.\n{exc}")
        result = review(
            diff,
            lambda path: git.read(head_ref, path),
            config,
            packs,
            files_at_base=lambda path: git.read(base_sha, path),
        )
    if config.extends:
        typer.echo(
            f"note: `extends: {config.extends}` is not fetched by a local check; {CONFIG_PATH} alone applies", err=True
        )
    head_sha = None if head_ref == INDEX else head_ref
    typer.echo(_render(output_format, result, config, packs, base_sha, head_sha), nl=False)
    raise typer.Exit(1 if result.failed else 0)


def _render(
    output_format: OutputFormat,
    result: ReviewResult,
    config: RepoConfig,
    packs: list[Pack],
    base_sha: str,
    head_sha: str | None,
) -> str:
    """The review in the asked format; `head_sha` None means the staged changes."""
    from agents.vision import render

    label = f"{base_sha[:7]}..{head_sha[:7] if head_sha else 'staged'}"
    if output_format is OutputFormat.json:
        summary = {"base": base_sha, "head": head_sha, **({} if head_sha else {"staged": True})}
        return json.dumps(render.to_json(result, **summary), indent=2) + "\n"
    if output_format is OutputFormat.markdown:
        return render.render_markdown(result, title=f"WowVision {label}")
    if output_format is OutputFormat.sarif:
        from agents.vision.sarif import to_sarif

        return json.dumps(to_sarif(result, packs, config), indent=2) + "\n"
    if output_format is OutputFormat.github:
        return render.render_github(result, range_label=label)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return render.render_text(result, color=color, range_label=label)


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
