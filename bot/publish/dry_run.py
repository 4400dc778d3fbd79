"""Printing outputs as they would be posted, where there are no GitHub credentials."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from agents import markdown as md
from agents.outputs import (
    CheckRun,
    Comment,
    IssueReport,
    Labels,
    Message,
    Output,
    PullRequest,
    Reaction,
    Review,
    ReviewDismissal,
    WorkflowDispatch,
    marker,
)
from bot.publish.common import Origin, Published


class DryRunPublisher:
    """Without GitHub credentials: print each output as it would be posted, in order, so nothing is silently lost.

    A header says what and where; below it is what a maintainer would read on GitHub
    (a review's inline comments each under its `path:line`, a check run's title, summary
    and annotations); last, the hidden marker that makes publishing it again an edit.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def publish(self, agent: str, outputs: Sequence[Output], origin: Origin) -> list[Published]:
        stream = self.stream or sys.stdout
        for output in outputs:
            what, shown = describe(output)
            header = f"━━ [dry run] {agent}: {what} "
            print(_printable(header + "━" * max(2, RULE_WIDTH - len(header))), file=stream)
            if shown:
                print(_printable(shown), file=stream)
            print(_printable(f"   ⤷ {marker(agent, output.kind, output.key)}"), file=stream)
            print(file=stream)
        stream.flush()
        return [Published(output.kind, output.key, None, None) for output in outputs]

    async def close(self) -> None:
        return None


RULE_WIDTH = 79
# What a terminal would act on rather than show (escape sequences): shown as escapes instead.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    return _TERMINAL_CONTROLS.sub(lambda found: f"\\x{ord(found.group()):02x}", text.replace("\r\n", "\n"))


def describe(output: Output) -> tuple[str, str]:
    """What an output is and where it goes (one line), and what a maintainer would read there."""
    if isinstance(output, Reaction):
        target = f"comment {output.comment_id}" if output.comment_id is not None else f"#{output.issue_number}"
        return f"reaction {output.content} on {target} in {output.repo}", ""
    if isinstance(output, Comment):
        closing = ", closing it" if output.close else ""
        return f"comment on {output.repo}#{output.issue_number}{closing}", output.body
    if isinstance(output, Labels):
        changes = [f"+{name}" for name in output.add] + [f"-{name}" for name in output.remove]
        return f"labels on {output.repo}#{output.issue_number}: {' '.join(changes) or 'none'}", ""
    if isinstance(output, IssueReport):
        labels = f" [{', '.join(output.labels)}]" if output.labels else ""
        return f"issue in {output.repo} ({output.state}){labels}: {output.title}", output.body
    if isinstance(output, Review):
        inline = "".join(
            f"\n\n▸ {c.path}:{f'{c.start_line}-' if c.start_line and c.start_line < c.line else ''}{c.line}\n"
            + textwrap.indent(c.body, "    ")
            for c in output.comments
        )
        what = f"review {output.event} on {output.repo}#{output.pr_number} at {output.commit_sha[:7]}"
        return f"{what}, {md.plural(len(output.comments), 'inline comment')}", output.body + inline
    if isinstance(output, ReviewDismissal):
        return (
            f"dismiss our reviews {output.review_key!r} requesting changes on {output.repo}#{output.pr_number}",
            output.message,
        )
    if isinstance(output, CheckRun):
        annotations = "".join(
            f"\n  {a.level:<8} {a.path}:{a.start_line}{f'-{a.end_line}' if a.end_line != a.start_line else ''}"
            f"  {a.title + ': ' if a.title else ''}{a.message.splitlines()[0] if a.message else ''}"
            for a in output.annotations
        )
        what = (
            f"check run {output.name!r} on {output.repo} at {output.head_sha[:7]}: {output.conclusion or 'in progress'}"
        )
        shown = f"Title: {output.title}\n\n{output.summary}"
        return what, shown + (f"\nAnnotations ({len(output.annotations)}):{annotations}" if annotations else "")
    if isinstance(output, PullRequest):
        files = "".join(f"\n  {path} ({len(text.encode()):,} bytes)" for path, text in output.files.items())
        where = f"{output.branch} → {output.base or 'the default branch'}"
        return (
            f"pull request in {output.repo} ({where}): {output.title}",
            f"{output.body}\n\nFiles, committed as {output.commit_message!r}:{files or ' none'}",
        )
    if isinstance(output, WorkflowDispatch):
        inputs = "\n".join(f"  {name} = {value!r}" for name, value in output.inputs.items())
        return (
            f"workflow dispatch of {output.workflow} in {output.repo} at {output.ref or 'the default branch'}",
            inputs,
        )
    if isinstance(output, Message):
        body = output.body if isinstance(output.body, str) else json.dumps(output.body, indent=2)
        return f"message {output.kind} to {output.to}", body
    files = "".join(f"\n  {name} ({len(content):,} bytes)" for name, content in output.files.items())
    where = f" as an issue in {output.repo} ({output.state})" if output.repo else ""
    return f"report{where}: {output.title}", output.markdown + (f"\n\nFiles:{files}" if files else "")
