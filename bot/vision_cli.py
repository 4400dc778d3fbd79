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
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.git import INDEX, Git, commit_range, toplevel
from bot.usage import UsageError, exit_for_usage

if TYPE_CHECKING:
    from agents.vision import Pack, RepoConfig, ReviewResult

vision_app = typer.Typer(help="WowVision Prime: policy reviews.", no_args_is_help=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"
    github = "github"


def _range(git: Git, base: str | None, head: str | None, staged: bool) -> tuple[str, str]:
    """(base, head) of what `check` reviews: the index against its base with --staged."""
    if staged:
        if head is not None:
            raise UsageError("--staged reviews the index: it takes no --head")
        return _staged_base(git, base), INDEX
    return commit_range(git, base, head or "HEAD")


def _staged_base(git: Git, base: str | None) -> str:
    """What the index is compared with: --base, else HEAD, else (before the first commit) nothing."""
    if base is not None:
        base_sha = git.commit(base)
        if base_sha is None:
            raise UsageError(f"--base {base!r} is not a commit in {git.repo}")
        return base_sha
    return git.commit("HEAD") or git.empty_tree()


@vision_app.command("check")
def check_command(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository to review.")] = Path("."),
    base: Annotated[
        str | None,
        typer.Option(
            "--base", help="Base commit (default: the merge-base with the default branch; HEAD with --staged)."
        ),
    ] = None,
    head: Annotated[str | None, typer.Option("--head", help="Head commit (default: HEAD).")] = None,
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
    except UsageError as exc:
        exit_for_usage(str(exc))
    with Git(root) as git:
        try:
            base_sha, head_ref = _range(git, base, head, staged)
            config = parse_config(git.read(base_sha, CONFIG_PATH), CONFIG_PATH)
            packs = resolve_packs(config, lambda path: git.read(base_sha, path))
            diff = parse_diff(git.diff(base_sha, head_ref))
        except UsageError as exc:
            exit_for_usage(str(exc))
        except (ConfigError, PolicyError) as exc:
            exit_for_usage(
                f"the configuration at the base commit {base_sha[:7]} cannot be used; nothing was reviewed.\n{exc}"
            )
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
        return render.render_review_markdown(result, title=f"WowVision {label}")
    if output_format is OutputFormat.sarif:
        from agents.vision.sarif import to_sarif

        return json.dumps(to_sarif(result, packs, config), indent=2) + "\n"
    if output_format is OutputFormat.github:
        return render.render_github(result, range_label=label)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return render.render_text(result, color=color, range_label=label)
