"""Output intents: what an agent asks the GitHub edge to do.

Agents never call GitHub. They return these, and `bot.publish` publishes them,
idempotently: every output that leaves text on GitHub carries the hidden marker
`<!-- waooaw:{agent}:{kind}:{key} -->`, so a redelivered event updates in place.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any, Literal

from agents.messages import MessageKind, check_message


def marker(agent: str, kind: str, key: str) -> str:
    """The hidden line that ends an output's body. It names the output within one repository
    of one installation; text from outside never carries one (agents.markdown breaks it)."""
    return f"<!-- waooaw:{agent}:{kind}:{key} -->"


@dataclass(frozen=True)
class Reaction:
    """A reaction on an issue comment (or on the issue itself when `comment_id` is None)."""

    repo: str
    content: Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
    comment_id: int | None = None
    issue_number: int | None = None
    kind = "reaction"

    @property
    def key(self) -> str:
        return f"{self.comment_id or 'issue-' + str(self.issue_number)}:{self.content}"


@dataclass(frozen=True)
class Comment:
    """One comment on an issue or PR, created once and then edited in place (by `key`).

    With `close`, the issue is closed after the comment is on it (not planned); an issue already
    closed is left as it is, and a pull request is never closed: its comment is refused."""

    repo: str
    issue_number: int
    body: str
    key: str
    _: KW_ONLY
    close: bool = False
    kind = "comment"


@dataclass(frozen=True)
class Labels:
    """Labels added to and removed from an issue or PR; publishing it again changes nothing.

    Labels leave no text on GitHub, so they carry no marker: what is published is the
    labels' presence, recorded by `key`. A label the repository lacks is created by GitHub
    on add; which labels an agent may add at all is for the agent to limit (a spec's
    `allowed` list). Removing a label the issue does not have is no error.
    """

    repo: str
    issue_number: int
    add: tuple[str, ...]
    _: KW_ONLY
    remove: tuple[str, ...] = ()
    key: str
    kind = "labels"


@dataclass(frozen=True)
class IssueReport:
    """One issue per `key`: created, updated when the body changes, closed when `state` is closed."""

    repo: str
    title: str
    body: str
    key: str
    labels: tuple[str, ...] = ()
    state: Literal["open", "closed"] = "open"
    kind = "issue"


@dataclass(frozen=True)
class InlineComment:
    path: str
    line: int
    body: str
    side: Literal["LEFT", "RIGHT"] = "RIGHT"
    start_line: int | None = None


@dataclass(frozen=True)
class Review:
    """One PR review per (head SHA, key)."""

    repo: str
    pr_number: int
    commit_sha: str
    body: str
    key: str
    event: Literal["COMMENT", "REQUEST_CHANGES", "APPROVE"] = "COMMENT"
    comments: tuple[InlineComment, ...] = ()
    kind = "review"


@dataclass(frozen=True)
class ReviewDismissal:
    """Dismiss the agent's reviews of `review_key` on a PR that still request changes.

    For when nothing they asked for is left. A review that is dismissed already, or does
    not request changes, is left alone, so publishing this again changes nothing.
    """

    repo: str
    pr_number: int
    review_key: str
    message: str
    kind = "review_dismissal"

    @property
    def key(self) -> str:
        return f"{self.pr_number}:{self.review_key}"


@dataclass(frozen=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    level: Literal["notice", "warning", "failure"]
    message: str
    title: str | None = None


@dataclass(frozen=True)
class CheckRun:
    """One check run per (head SHA, name)."""

    repo: str
    head_sha: str
    name: str
    title: str
    summary: str
    conclusion: Literal["success", "failure", "neutral", "skipped", "action_required"] | None = None
    annotations: tuple[Annotation, ...] = ()
    kind = "check_run"

    @property
    def key(self) -> str:
        return f"{self.head_sha}:{self.name}"


@dataclass(frozen=True)
class Report:
    """A generated report: files to write and, optionally, an issue to upsert."""

    title: str
    markdown: str
    key: str
    repo: str | None = None
    labels: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    state: Literal["open", "closed"] = "open"  # closed: the issue is closed (an earlier day's report)
    kind = "report"


@dataclass(frozen=True)
class PullRequest:
    """One pull request per `key`, from `branch` into `base` (None: the default branch).

    The branch is created from the base when missing; each file of `files` (path → text)
    is committed to it only when its contents differ; the PR is opened once and its
    title and body kept current. Publishing it again changes nothing.
    """

    repo: str
    branch: str
    title: str
    body: str
    key: str
    files: dict[str, str] = field(default_factory=dict)
    base: str | None = None
    commit_message: str = "Update files"
    kind = "pull_request"


@dataclass(frozen=True)
class WorkflowDispatch:
    """Start a `workflow_dispatch` workflow (a file under .github/workflows) once per `key`.

    Made with the App's installation token: an event made with a workflow's GITHUB_TOKEN
    starts no workflow, but a dispatch does either way.
    """

    repo: str
    workflow: str
    key: str
    inputs: dict[str, str] = field(default_factory=dict)
    ref: str | None = None  # None: the default branch
    kind = "workflow_dispatch"


@dataclass(frozen=True)
class Message:
    """A message to another agent, or to a role of a CoE (`COE:ROLE`); see agents/messages.py.

    `kind` is the message's kind (request, handoff, inform, result, escalate), not an output
    kind: a message never reaches GitHub. The edge records it (`agent_messages`) and delivers it
    as an `agent_message` event in the sender's installation and repository: `repo`, when given,
    must be the event's (another is refused, as for every output). `key` names the message
    within the sender's run on one event (default: its place among the run's messages), so a
    rerun of the run sends nothing twice. Without `correlation_id` the message goes on the
    conversation of the message the sender is answering, or starts the event's own.
    """

    kind: MessageKind
    to: str
    body: str | dict[str, Any]
    correlation_id: str | None = None
    deadline: datetime | None = None
    repo: str | None = None
    key: str = ""

    def __post_init__(self) -> None:
        check_message(self.kind, self.to, self.body, self.correlation_id, self.deadline, self.key)


Output = (
    Reaction
    | Comment
    | Labels
    | IssueReport
    | Review
    | ReviewDismissal
    | CheckRun
    | Report
    | PullRequest
    | WorkflowDispatch
    | Message
)
