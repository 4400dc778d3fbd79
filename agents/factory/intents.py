"""An answer becomes intents: the spec's declared outputs, rendered, checked and capped.

Nothing an answer says can become anything but one of the spec's outputs: each output is
made only from its own declaration (the answer only fills in its templates), and what
does not hold is refused, never published — a label outside `allowed`, a file outside
the pull request's `paths`, a review event other than COMMENT or REQUEST_CHANGES, an
output with nothing to act on, and every output past `limits.outputs_per_event`.
Refusals are returned beside the intents, for the log and for `waooaw agents test`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.events import Event
from agents.factory import templates
from agents.factory.checks import valid_branch
from agents.factory.spec import MESSAGE_KINDS, REVIEW_EVENTS, AgentSpec, OutputSpec
from agents.outputs import Comment, IssueReport, Labels, Message, Output, PullRequest, Review
from agents.vision.globs import matches_any

TITLE_MAX = 256  # GitHub's limit on an issue's or pull request's title
KEY_MAX = 200
FILES_MAX = 50  # files one pull request output may write
FILE_BYTES_MAX = 512 * 1024
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._:/#@+=-]+")


class Refused(Exception):
    """An output that cannot be made; the message says why."""


@dataclass(frozen=True)
class Refusal:
    output: int  # its place in the spec's outputs
    kind: str
    reason: str


@dataclass
class Intents:
    outputs: list[Output] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def build_intents(spec: AgentSpec, event: Event, values: Mapping[str, Any]) -> Intents:
    """The intents `values` (the event, the reads and the answer) make of the spec's outputs."""
    made = Intents()
    counts: dict[str, int] = {}
    for index, declared in enumerate(spec.outputs):
        kind = declared.kind
        try:
            if declared.when is not None and not templates.evaluate(declared.when, values):
                continue
            counts[kind] = counts.get(kind, 0) + 1
            built = _BUILDERS[kind](_Making(spec, declared, event, values, counts[kind] - 1))
        except Refused as refused:
            made.refused.append(Refusal(index, kind, str(refused)))
            continue
        except Exception as exc:  # noqa: BLE001 — a template that fails on this answer refuses its output, nothing else
            made.refused.append(Refusal(index, kind, f"its template failed: {type(exc).__name__}: {exc}"))
            continue
        for output, refusal in built:
            if refusal is not None:
                made.refused.append(Refusal(index, kind, refusal))
            if output is None:
                continue
            if len(made.outputs) >= spec.limits.outputs_per_event:
                cap = spec.limits.outputs_per_event
                made.refused.append(Refusal(index, kind, f"over the cap of {cap} outputs per event"))
                continue
            made.outputs.append(output)
    return made


# ------------------------------------------------------------------ one output


@dataclass(frozen=True)
class _Making:
    spec: AgentSpec
    declared: OutputSpec
    event: Event
    values: Mapping[str, Any]
    nth: int  # outputs of this kind made before it on this event

    @property
    def repo(self) -> str:
        if self.event.repo is None:
            raise Refused("the event names no repository")
        return self.event.repo

    def issue_number(self) -> int:
        if self.event.issue_number is None:
            raise Refused("the event has no issue or pull request to act on")
        return self.event.issue_number

    def markdown(self, source: str) -> str:
        return templates.render(source, self.values, "markdown")

    def plain(self, source: str) -> str:
        return templates.render(source, self.values)

    def title(self, source: str) -> str:
        title = " ".join(self.plain(source).split())[:TITLE_MAX]
        if not title:
            raise Refused("its title is empty")
        return title

    def key(self, default: str) -> str:
        """`<spec name>:<key>`: the declared `key` rendered, else `default` (numbered after the first of a kind)."""
        if self.declared.key is not None:
            chosen = self.plain(self.declared.key)
        else:
            chosen = default if self.nth == 0 else f"{default}:{self.nth}"
        chosen = _KEY_UNSAFE.sub("-", chosen).strip("-")
        if not chosen:
            raise Refused("its key is empty")
        return f"{self.spec.name}:{chosen}"[:KEY_MAX]

    def event_key(self) -> str:
        return str(self.event.issue_number) if self.event.issue_number is not None else self.event.delivery_id


Built = list[tuple[Output | None, str | None]]  # each intent made, or a refusal of part of it


def _comment(making: _Making) -> Built:
    spec = making.declared.comment
    assert spec is not None
    numbers = [making.issue_number()] if spec.issue_number is None else _numbers(spec.issue_number, making.values)
    close = spec.close if isinstance(spec.close, bool) else templates.render_value(spec.close, making.values)
    if not isinstance(close, bool):
        raise Refused(f"`close` is a {type(close).__name__}, not true or false")
    body = making.markdown(spec.body)
    if not body.strip():
        raise Refused("its body is empty")

    def key(number: int) -> str:
        """Its issue's number, after the declared key when the output names its issues: one comment each."""
        if spec.issue_number is None or making.declared.key is None:
            return making.key(str(number))
        return f"{making.key('')}:{number}"[:KEY_MAX]

    return [(Comment(making.repo, number, body, key=key(number), close=close), None) for number in numbers]


def _labels(making: _Making) -> Built:
    spec = making.declared.labels
    assert spec is not None
    number = making.issue_number()
    refusals: list[str] = []

    def chosen(value: str | list[str]) -> tuple[str, ...]:
        names = _names(value, making.values)
        outside = [name for name in names if name not in spec.allowed]
        refusals.extend(f"label {name!r} is not in `allowed`" for name in outside)
        return tuple(dict.fromkeys(name for name in names if name in spec.allowed))

    add, remove = chosen(spec.add), chosen(spec.remove)
    built: Built = [(None, refusal) for refusal in refusals]
    if add or remove:
        built.append((Labels(making.repo, number, add, remove=remove, key=making.key(str(number))), None))
    return built


def _issue(making: _Making) -> Built:
    spec = making.declared.issue
    assert spec is not None
    title, body = making.title(spec.title), making.markdown(spec.body)
    key = making.key(making.event_key())
    return [(IssueReport(making.repo, title, body, key=key, labels=tuple(spec.labels)), None)]


def _pull_request(making: _Making) -> Built:
    spec = making.declared.pull_request
    assert spec is not None
    files = _files(spec.files, making.values)
    outside = sorted(path for path in files if not _safe_path(path) or not matches_any(path, spec.paths))
    if outside:
        raise Refused(f"{', '.join(map(repr, outside))} outside its `paths` ({', '.join(spec.paths)})")
    if not files:
        raise Refused("it writes no file")
    title, body = making.title(spec.title), making.markdown(spec.body)
    key = making.key(making.event_key())
    branch = making.plain(spec.branch) if spec.branch is not None else "waooaw/" + key.replace(":", "/")
    if not valid_branch(branch):
        raise Refused(f"{branch!r} is not a branch name under waooaw/")
    message = f"{title} ({making.spec.name})"
    return [(PullRequest(making.repo, branch, title, body, key=key, files=files, commit_message=message), None)]


def _review(making: _Making) -> Built:
    spec = making.declared.review
    assert spec is not None
    pull = making.event.payload.get("pull_request")
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) else None
    if not isinstance(sha, str) or making.event.issue_number is None:
        raise Refused("a review needs a pull request event")
    verdict = making.plain(spec.event).strip()
    if verdict not in REVIEW_EVENTS:
        raise Refused(f"review event {verdict!r} is not one of {', '.join(REVIEW_EVENTS)}")
    number = making.event.issue_number
    review = Review(making.repo, number, sha, making.markdown(spec.body), key=making.key(str(number)), event=verdict)  # type: ignore[arg-type]  # checked against REVIEW_EVENTS above
    return [(review, None)]


def _message(making: _Making) -> Built:
    spec = making.declared.message
    assert spec is not None
    kind = making.plain(spec.kind).strip()
    if kind not in MESSAGE_KINDS:
        raise Refused(f"message kind {kind!r} is not one of {', '.join(MESSAGE_KINDS)}")
    to, body = making.plain(spec.to).strip(), making.plain(spec.body)
    try:
        message = Message(kind=kind, to=to, body=body, repo=making.repo, key=making.key(making.event_key()))  # type: ignore[arg-type]  # checked against MESSAGE_KINDS above
    except ValueError as problem:
        raise Refused(f"message: {problem}") from None
    return [(message, None)]


_BUILDERS: dict[str, Callable[[_Making], Built]] = {
    "comment": _comment,
    "labels": _labels,
    "issue": _issue,
    "pull_request": _pull_request,
    "review": _review,
    "message": _message,
}


# ------------------------------------------------------------------ values


def _names(value: str | list[str], values: Mapping[str, Any]) -> list[str]:
    """Label names from a value (`"{{ answer.labels }}"`, a list, a comma-separated string)."""
    rendered: Any = (
        templates.render_value(value, values)
        if isinstance(value, str)
        else [templates.render_value(v, values) for v in value]
    )
    if rendered is None:
        return []
    if isinstance(rendered, str):
        rendered = rendered.split(",")
    if not isinstance(rendered, list | tuple):
        raise Refused(f"its labels are a {type(rendered).__name__}, not a list")
    names: list[str] = []
    for item in rendered:
        if isinstance(item, list | tuple):
            names += [str(inner).strip() for inner in item]
        elif item is not None:
            names.append(str(item).strip())
    return [name for name in names if name]


def _numbers(value: int | str, values: Mapping[str, Any]) -> list[int]:
    """Issue numbers from a value (`"{{ stale | map(attribute='number') | list }}"`, one number, `"12"`)."""
    rendered = templates.render_value(value, values) if isinstance(value, str) else value
    items = rendered if isinstance(rendered, list | tuple) else [rendered]
    numbers: list[int] = []
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if type(item) is not int or item < 1:
            raise Refused(f"issue number {item!r} is not a positive whole number")
        numbers.append(item)
    return list(dict.fromkeys(numbers))


def _files(value: str | dict[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    if isinstance(value, str):
        rendered = templates.render_value(value, values)
        if isinstance(rendered, list):  # [{path, content}]
            rendered = {item.get("path"): item.get("content") for item in rendered if isinstance(item, Mapping)}
        if not isinstance(rendered, Mapping):
            raise Refused(f"its files are a {type(rendered).__name__}, not a mapping of path to text")
    else:
        rendered = {
            templates.render(path, values).strip(): templates.render(text, values) for path, text in value.items()
        }
    if len(rendered) > FILES_MAX:
        raise Refused(f"it writes {len(rendered)} files, more than {FILES_MAX}")
    files: dict[str, str] = {}
    for path, text in rendered.items():
        if not isinstance(path, str) or not isinstance(text, str):
            raise Refused("each file is a path and its text")
        if len(text.encode()) > FILE_BYTES_MAX:
            raise Refused(f"{path!r} is over {FILE_BYTES_MAX // 1024} KiB")
        files[path.strip()] = text
    return files


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts and "\\" not in path
