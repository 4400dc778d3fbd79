"""The agent spec, `waooaw/agent/v1`: one YAML file that the factory turns into a WowAgent.

`load_spec(path)` reads a file and returns an `AgentSpec`, or raises `SpecError` listing
every problem as `FILE:LINE: where: message`. The pydantic model checks the shape; then
`agents.factory.checks` checks what a shape cannot say: templates that parse in the
sandbox and name only what the spec reads, an answer schema that is valid JSON Schema
and declares every `answer.X` the outputs use, outputs that can only do what they
declare, and examples whose payloads exist and whose answers fit the schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from agents.vision.globs import validate_glob
from agents.vision.yamlsource import Problem, SourceError, YamlDocument

SPEC_VERSION = "waooaw/agent/v1"
NAME_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
# `issues.opened`, `issue_comment.*`, `push`, `agent_message.handoff`: patterns as WowAgent.wakes_on
WAKE_PATTERN = r"^[a-z_]+(\.[a-z_*]+)?$"
COMMAND_PATTERN = r"^/[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)?$"
LABEL_PATTERN = r"^[^,\n]{1,50}$"  # GitHub's limit on a label's name

OutputKind = Literal["comment", "labels", "issue", "pull_request", "review", "message"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("comment", "labels", "issue", "pull_request", "review", "message")
REVIEW_EVENTS = ("COMMENT", "REQUEST_CHANGES")
MESSAGE_KINDS = ("request", "handoff", "inform", "result", "escalate")
RUNGS = ("deterministic", "cached", "llm", "skipped", "fallback")
Rung = Literal["deterministic", "cached", "llm", "skipped", "fallback"]

# The reads a spec may ask for: flags, and kinds with options (each with its default and cap).
READ_FLAGS = ("issue", "pull_request", "labels", "context")
READ_KINDS = (
    *READ_FLAGS,
    "files",
    "similar_issues",
    "issues",
    "releases",
    "merged_pulls",
    "contributors",
    "stargazers",
)
# Template variables every template sees; `answer` only once there is one (outputs).
BASE_VARIABLES = ("event", "payload", "repo")


class SpecError(SourceError):
    """An agent spec that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _glob(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{value!r}: a glob is relative to the repository root and stays inside it")
    return validate_glob(value)


class Command(_Strict):
    name: str = Field(pattern=COMMAND_PATTERN, description="`/triage`, or a prefix and a verb: `/waooaw triage`")
    needs_write: bool = False
    summary: str = ""  # what `/waooaw help` says of it; the spec's title when empty


class FilesRead(_Strict):
    paths: list[str] = Field(min_length=1, max_length=50)
    max_bytes: int = Field(64 * 1024, ge=1, le=256 * 1024)
    max_files: int = Field(20, ge=1, le=20)

    @field_validator("paths")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [_glob(glob) for glob in value]


class SimilarIssuesRead(_Strict):
    limit: int = Field(5, ge=1, le=20)
    state: Literal["open", "closed", "all"] = "all"


class IssuesRead(_Strict):
    """The repository's issues (never pull requests) carrying every one of `labels`, by last update."""

    labels: list[str] = Field(default_factory=list, max_length=10)
    state: Literal["open", "closed", "all"] = "open"
    limit: int = Field(30, ge=1, le=100)
    updated_before_days: int | None = Field(None, ge=1, le=3650, description="only those not updated for N days")
    as_: str | None = Field(
        None, alias="as", pattern=r"^[a-z][a-z0-9_]{0,39}$", description="the template variable (default `issues`)"
    )

    @field_validator("labels")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _labels(value)


class ReleasesRead(_Strict):
    limit: int = Field(5, ge=1, le=20)


class MergedPullsRead(_Strict):
    limit: int = Field(50, ge=1, le=100)
    # A template over the event (`event`, `payload`, `repo`): the tag of the release whose merges to read
    # (those after the release before it, up to it). Empty, or left out: a release event's own release,
    # else the merges since the latest release.
    release: str | None = Field(None, max_length=500)


class ContributorsRead(_Strict):
    limit: int = Field(30, ge=1, le=100)


class StargazersRead(_Strict):
    limit: int = Field(100, ge=1, le=100)


class ReadItem(_Strict):
    """One entry of `reads`: `issue`, `{files: [globs]}`, `{similar_issues: {limit: 5}}` …, with an optional `when`."""

    issue: bool = False
    pull_request: bool = False
    labels: bool = False
    context: bool = False
    files: FilesRead | None = None
    similar_issues: SimilarIssuesRead | None = None
    issues: IssuesRead | None = None
    releases: ReleasesRead | None = None
    merged_pulls: MergedPullsRead | None = None
    contributors: ContributorsRead | None = None
    stargazers: StargazersRead | None = None
    # Over the event alone (`event`, `payload`, `repo`): when false, the read is not made and its variable
    # is its empty value, so an event whose path never uses a read costs no GitHub call for it.
    when: str | None = Field(None, min_length=1, description="a Jinja expression: the read is made when it is true")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {data: None}
        kinds = {key: value for key, value in data.items() if key != "when"} if isinstance(data, dict) else {}
        if len(kinds) != 1:
            kinds_text = ", ".join(READ_KINDS)
            raise ValueError(f"a read is one of {kinds_text}, alone or as `KIND: options`, with an optional `when`")
        ((kind, options),) = kinds.items()
        when = {"when": data["when"]} if "when" in data else {}
        if kind not in READ_KINDS:
            raise ValueError(f"unknown read {kind!r}: one of {', '.join(READ_KINDS)}")
        if kind in READ_FLAGS:
            if options not in (None, True):
                raise ValueError(f"`{kind}` takes no options: write `- {kind}`")
            return {kind: True, **when}
        if kind == "files" and isinstance(options, str | list):
            options = {"paths": [options] if isinstance(options, str) else options}
        return {kind: {} if options is None else options, **when}

    @property
    def kind(self) -> str:
        return next(kind for kind in READ_KINDS if getattr(self, kind))

    @property
    def variable(self) -> str:
        """The template variable it fills: its kind, or an `issues` read's `as`."""
        return (self.issues.as_ if self.issues is not None else None) or self.kind


class CommentOut(_Strict):
    body: str = Field(min_length=1)
    # A template giving one number or a list of them (one comment each); default: the event's issue or PR.
    issue_number: int | str | None = None
    # Close the issue after commenting (never a pull request): true, false, or one `{{ answer.X }}` boolean.
    close: bool | str = False


class LabelsOut(_Strict):
    add: str | list[str] = Field(default_factory=list)
    remove: str | list[str] = Field(default_factory=list)
    allowed: list[str] = Field(min_length=1, description="the only labels this output may add or remove")

    @field_validator("allowed")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _labels(value)


class IssueOut(_Strict):
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)
    labels: list[str] = Field(default_factory=list, description="written by the spec's author, not templates")

    @field_validator("labels")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _labels(value)


class PullRequestOut(_Strict):
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)
    branch: str | None = None  # default: waooaw/<agent>/<key>
    files: str | dict[str, str]  # `"{{ answer.files }}"` ({path: text}), or a mapping path → text
    paths: list[str] = Field(min_length=1, description="globs: the only paths this pull request may write")

    @field_validator("paths")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [_glob(glob) for glob in value]


class ReviewOut(_Strict):
    body: str = Field(min_length=1)
    event: str = "COMMENT"  # COMMENT or REQUEST_CHANGES (a template must render to one of them)


class MessageOut(_Strict):
    kind: str  # request, handoff, inform, result or escalate
    to: str = Field(min_length=1)  # an agent name or a role `COE:ROLE`
    body: str = Field(min_length=1)


class OutputSpec(_Strict):
    """One entry of `outputs`: exactly one kind, an optional `when` and an optional `key`."""

    comment: CommentOut | None = None
    labels: LabelsOut | None = None
    issue: IssueOut | None = None
    pull_request: PullRequestOut | None = None
    review: ReviewOut | None = None
    message: MessageOut | None = None
    when: str | None = Field(None, min_length=1, description="a Jinja expression: the output is made when it is true")
    key: str | None = Field(None, min_length=1, description="a template: which object on GitHub this output is")

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kinds = [key for key in data if key not in ("when", "key")]
            unknown = [key for key in kinds if key not in OUTPUT_KINDS]
            if unknown:
                raise ValueError(f"unknown output kind {unknown[0]!r}: one of {', '.join(OUTPUT_KINDS)}")
            if len(kinds) != 1:
                raise ValueError(f"an output has exactly one kind of {', '.join(OUTPUT_KINDS)}, found {len(kinds)}")
        return data

    @property
    def kind(self) -> OutputKind:
        return next(kind for kind in OUTPUT_KINDS if getattr(self, kind) is not None)

    @property
    def body(self) -> BaseModel:
        value: BaseModel = getattr(self, self.kind)
        return value


class Limits(_Strict):
    outputs_per_event: int = Field(3, ge=1, le=20)
    usd_per_run: float = Field(0.05, ge=0, le=5)
    answer_tokens: int = Field(2048, ge=256, le=16384)  # the model's answer at most (its cost counts up front)


class Rule(_Strict):
    """A deterministic rule: when `when` holds over the event and the reads, `answer` is the answer."""

    when: str = Field(min_length=1)
    answer: dict[str, Any]


class ExampleEvent(_Strict):
    name: str = Field(pattern=r"^[a-z_]+$")
    action: str | None = None
    payload: dict[str, Any] | None = None
    payload_file: str | None = None  # relative to the spec file

    @model_validator(mode="after")
    def _one_payload(self) -> ExampleEvent:
        if (self.payload is None) == (self.payload_file is None):
            raise ValueError("an example's event has exactly one of payload and payload_file")
        return self


class Expect(_Strict):
    """One intent an example must produce (`kind` and a check on its natural field), or the rung (`rung`)."""

    kind: OutputKind | None = None
    contains: str | list[str] | None = None
    equals: Any = None
    field: str | None = None  # the intent's field to check, when not its natural one
    rung: Rung | None = None

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.kind is None and self.rung is None:
            raise ValueError("an expectation names a `kind` of output, a `rung`, or both")
        if self.kind is None and ({"contains", "equals", "field"} & self.model_fields_set):
            raise ValueError("`contains`, `equals` and `field` check an output: name its `kind`")
        return self


class Example(_Strict):
    name: str = Field(min_length=1)
    event: ExampleEvent
    given: dict[str, Any] = Field(default_factory=dict)  # what `reads` would fetch
    answer: dict[str, Any] | None = None  # what the scripted model answers; none: it is not asked
    expect: list[Expect] = Field(default_factory=list)


class AgentSpec(_Strict):
    spec: Literal["waooaw/agent/v1"]
    name: str = Field(pattern=NAME_PATTERN)
    coe: str = Field(pattern=NAME_PATTERN)
    title: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=4000)
    wakes_on: list[str] = Field(default_factory=list)
    command: Command | None = None
    reads: list[ReadItem] = Field(default_factory=list)
    instructions: str = Field(min_length=1)
    answer: dict[str, Any]
    outputs: list[OutputSpec] = Field(min_length=1, max_length=20)
    limits: Limits = Field(default_factory=Limits)
    deterministic: list[Rule] = Field(default_factory=list)
    fallback: dict[str, Any] | None = None  # the answer when the model cannot be asked (no key, budget, breaker)
    examples: list[Example] = Field(min_length=1)

    _source: Path | None = PrivateAttr(None)

    @field_validator("wakes_on")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not re.fullmatch(WAKE_PATTERN, pattern):
                raise ValueError(f"{pattern!r} is not an event pattern (`issues.opened`, `issue_comment.*`, `push`)")
        return value

    @model_validator(mode="after")
    def _wakes(self) -> AgentSpec:
        if not self.wakes_on and self.command is None:
            raise ValueError("a spec wakes on something: give `wakes_on`, a `command`, or both")
        return self

    @property
    def source(self) -> Path | None:
        """The file it was loaded from (payload_file is relative to it)."""
        return self._source

    @property
    def read_names(self) -> tuple[str, ...]:
        """The template variables the reads fill, in order."""
        return tuple(item.variable for item in self.reads)

    @property
    def digest(self) -> str:
        """What the model is asked and how its answer is read: a change makes earlier cached answers unusable."""
        asked = self.model_dump(
            mode="json", include={"name", "title", "description", "reads", "instructions", "answer"}
        )
        return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]


def _labels(value: list[str]) -> list[str]:
    for label in value:
        if not re.fullmatch(LABEL_PATTERN, label):
            raise ValueError(f"{label!r} is not a label name (1 to 50 characters, no comma or line break)")
    return value


def parse_spec(text: str | bytes, source: str, path: Path | None = None) -> AgentSpec:
    """A spec from its text; `source` names it in errors, `path` locates its example payloads."""
    from agents.factory.checks import check  # the checks render templates: the model alone stays light

    document = YamlDocument(text, source, SpecError)
    spec = document.validate(AgentSpec)
    spec._source = path
    problems = check(spec, document)
    if problems:
        raise SpecError(source, problems)
    return spec


def load_spec(path: Path) -> AgentSpec:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SpecError(str(path), [Problem(None, "", f"cannot be read: {exc.strerror or exc}")]) from None
    return parse_spec(text, str(path), path)
