"""What a spec's shape cannot say, checked before it may run; each problem at its line.

- the answer is a valid JSON Schema (Draft 2020-12) of an object with properties;
- every template parses in the sandbox and reads only variables it has: the event, the
  payload, the repository and what the spec `reads` — and, in outputs, `answer`; a read's
  `when` and options, made before any read, only the event, the payload and the repository;
- every `answer.X` an output or its `when` uses is declared in the answer schema;
- `raw` is used on the author's own constants only;
- literal labels are in their output's `allowed`, literal file paths inside `paths`, a
  review's event is COMMENT or REQUEST_CHANGES, a message's kind one of the five;
- deterministic answers and the fallback fit the answer schema (when they are literal);
- examples: the payload file exists and is a JSON object, the scripted answer fits the
  schema, `given` names only what the spec reads, and `expect` only kinds it can produce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agents.factory import templates
from agents.factory.spec import (
    BASE_VARIABLES,
    MESSAGE_KINDS,
    READ_KINDS,
    REVIEW_EVENTS,
    AgentSpec,
    OutputSpec,
)
from agents.vision.globs import matches_any
from agents.vision.yamlsource import Loc, Problem, YamlDocument

# What `expect[].field` may name, per kind; the first is the natural field.
INTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "comment": ("body", "issue_number", "close"),
    "labels": ("add", "remove"),
    "issue": ("title", "body", "labels"),
    "pull_request": ("files", "title", "body", "branch"),
    "review": ("body", "event"),
    "message": ("body", "to", "message_kind"),
}
BRANCH_PREFIX = "waooaw/"
_BRANCH = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<!/)(?<!\.lock)$")
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def check(spec: AgentSpec, document: YamlDocument) -> list[Problem]:
    checker = _Checker(spec, document)
    checker.run()
    return checker.problems


def valid_branch(name: str) -> bool:
    """A branch of our own (`waooaw/…`): a pull request never writes to the default branch or another's."""
    return name.startswith(BRANCH_PREFIX) and _BRANCH.match(name) is not None


class _Checker:
    def __init__(self, spec: AgentSpec, document: YamlDocument) -> None:
        self.spec = spec
        self.document = document
        self.problems: list[Problem] = []
        self.read_vars = frozenset((*BASE_VARIABLES, *spec.read_names))
        self.answer_vars = self.read_vars | {"answer"}
        self.schema: dict[str, Any] | None = None

    def run(self) -> None:
        spec = self.spec
        self._answer_schema()
        self._reads()
        self.template(("instructions",), spec.instructions, self.read_vars, flavour="prompt")
        for index, rule in enumerate(spec.deterministic):
            self.template(("deterministic", index, "when"), rule.when, self.read_vars, expression=True)
            self._literal_answer(("deterministic", index, "answer"), rule.answer)
        if spec.fallback is not None:
            self._literal_answer(("fallback",), spec.fallback)
        for index, output in enumerate(spec.outputs):
            self._output(index, output)
        self._examples()

    # ------------------------------------------------------------ reporting

    def fail(self, loc: Loc, message: str, template_line: int = 1) -> None:
        node = self.document.node_at(loc)
        line = self.document.line_of(loc)
        if line is not None and isinstance(node, yaml.ScalarNode):
            # a block scalar's text starts on the line after its `|` or `>`
            line += template_line if node.style in ("|", ">") else template_line - 1
        self.problems.append(Problem(line, _where(loc), message))

    # ------------------------------------------------------------ the answer schema

    def _answer_schema(self) -> None:
        schema = self.spec.answer
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            self.fail(("answer", *exc.path), f"not a valid JSON Schema: {exc.message}")
            return
        properties = schema.get("properties")
        if schema.get("type") != "object" or not isinstance(properties, dict) or not properties:
            self.fail(("answer",), "the answer is an object: `type: object` with `properties`")
            return
        for name in schema.get("required", []):
            if name not in properties:
                self.fail(("answer", "required"), f"{name!r} is required but not among the properties")
        self.schema = schema

    def fits(self, loc: Loc, answer: dict[str, Any]) -> None:
        if self.schema is None:
            return
        for error in sorted(Draft202012Validator(self.schema).iter_errors(answer), key=lambda e: list(e.path)):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            self.fail((*loc, *error.path), f"does not fit the answer schema: answer{where}: {error.message}")

    def _literal_answer(self, loc: Loc, answer: dict[str, Any]) -> None:
        strings = list(_strings(answer))
        for path, text in strings:
            if templates.is_template(text):
                self.template((*loc, *path), text, self.read_vars)
        if not any(templates.is_template(text) for _, text in strings):
            self.fits(loc, answer)

    # ------------------------------------------------------------ templates

    def template(
        self,
        loc: Loc,
        source: str,
        allowed: Iterable[str],
        *,
        expression: bool = False,
        flavour: templates.Flavour = "plain",
    ) -> None:
        try:
            tree = templates.parse_expression(source) if expression else templates.parse(source)
        except templates.TemplateSyntaxError as exc:
            self.fail(loc, f"the template does not parse: {exc.message}", exc.lineno if not expression else 1)
            return
        for name, line in sorted(templates.names(tree).items()):
            if name not in allowed:
                self.fail(loc, self._unknown(name), line)
        if "answer" in allowed and self.schema is not None:
            reported: set[str] = set()
            for path, line in templates.paths_of(tree, "answer"):
                missing = _undeclared(self.schema, path)
                if missing is not None and missing not in reported:
                    reported.add(missing)
                    self.fail(loc, f"`answer.{missing}` is not declared in the answer schema's properties", line)
        raw_line = templates.raw_on_outside_text(tree) if flavour == "markdown" else None
        if raw_line is not None:
            self.fail(loc, "`raw` is for the author's own text (a constant): outside text stays escaped", raw_line)

    def _unknown(self, name: str) -> str:
        if name == "answer":
            return "`answer` is not known here: the model answers after the instructions and the rules"
        if name in self.spec.read_names:
            return f"`{name}` is not known here: a read's `when` and options know only {', '.join(BASE_VARIABLES)}"
        if name in READ_KINDS:
            return f"`{name}` is not read: add it to `reads`"
        known = ", ".join(sorted(self.answer_vars))
        return f"`{name}` is not a variable of this spec (known: {known})"

    # ------------------------------------------------------------ reads and outputs

    def _reads(self) -> None:
        seen: set[str] = set()
        for index, item in enumerate(self.spec.reads):
            name = item.variable
            if name in seen:
                self.fail(("reads", index), f"`{name}` is read twice" + (": name one `as:`" if item.issues else ""))
            elif name != item.kind and (name in READ_KINDS or name in (*BASE_VARIABLES, "answer")):
                self.fail(("reads", index, "issues", "as"), f"`{name}` is the name of another variable")
            seen.add(name)
            if item.when is not None:
                self.template(("reads", index, "when"), item.when, BASE_VARIABLES, expression=True)
            if item.merged_pulls is not None and item.merged_pulls.release is not None:
                self.template(("reads", index, "merged_pulls", "release"), item.merged_pulls.release, BASE_VARIABLES)

    def _output(self, index: int, output: OutputSpec) -> None:
        loc: tuple[str | int, ...] = ("outputs", index)
        allowed = self.answer_vars
        if output.when is not None:
            self.template((*loc, "when"), output.when, allowed, expression=True)
        if output.key is not None:
            self.template((*loc, "key"), output.key, allowed)
        kind = output.kind
        here = (*loc, kind)
        if output.comment is not None:
            self.template((*here, "body"), output.comment.body, allowed, flavour="markdown")
            if isinstance(output.comment.issue_number, str):
                self.template((*here, "issue_number"), output.comment.issue_number, allowed)
            close = output.comment.close
            if isinstance(close, str) and not re.fullmatch(r"\{\{\s*answer(\.\w+)+\s*\}\}", close):
                self.fail((*here, "close"), "`close` is true, false or one `{{ answer.FIELD }}` (a boolean)")
            elif isinstance(close, str):
                self.template((*here, "close"), close, allowed)
        if output.labels is not None:
            for field in ("add", "remove"):
                value = getattr(output.labels, field)
                self._value((*here, field), value, allowed)
                for position, label in enumerate([value] if isinstance(value, str) else value):
                    if not templates.is_template(label) and label not in output.labels.allowed:
                        self.fail((*here, field, position), f"label {label!r} is not in `allowed`")
        if output.issue is not None:
            self.template((*here, "title"), output.issue.title, allowed)
            self.template((*here, "body"), output.issue.body, allowed, flavour="markdown")
        if output.pull_request is not None:
            self._pull_request(here, output)
        if output.review is not None:
            self.template((*here, "body"), output.review.body, allowed, flavour="markdown")
            self._choice((*here, "event"), output.review.event, REVIEW_EVENTS)
        if output.message is not None:
            self._choice((*here, "kind"), output.message.kind, MESSAGE_KINDS)
            self.template((*here, "to"), output.message.to, allowed)
            self.template((*here, "body"), output.message.body, allowed)

    def _pull_request(self, loc: Loc, output: OutputSpec) -> None:
        pull = output.pull_request
        assert pull is not None
        self.template((*loc, "title"), pull.title, self.answer_vars)
        self.template((*loc, "body"), pull.body, self.answer_vars, flavour="markdown")
        if pull.branch is not None:
            self.template((*loc, "branch"), pull.branch, self.answer_vars)
            if not templates.is_template(pull.branch) and not valid_branch(pull.branch):
                self.fail((*loc, "branch"), f"{pull.branch!r} is not a branch name under {BRANCH_PREFIX}")
        if isinstance(pull.files, str):
            self._value((*loc, "files"), pull.files, self.answer_vars)
            return
        for path, text in pull.files.items():
            self.template((*loc, "files", path), text, self.answer_vars)
            if templates.is_template(path):
                self.template((*loc, "files"), path, self.answer_vars)
            elif not matches_any(path, pull.paths):
                self.fail((*loc, "files", path), f"{path!r} is outside the pull request's `paths`")

    def _value(self, loc: Loc, value: str | list[str], allowed: Iterable[str]) -> None:
        for position, text in enumerate([value] if isinstance(value, str) else value):
            self.template(loc if isinstance(value, str) else (*loc, position), text, allowed)

    def _choice(self, loc: Loc, value: str, choices: tuple[str, ...]) -> None:
        if templates.is_template(value):
            self.template(loc, value, self.answer_vars)
        elif value not in choices:
            self.fail(loc, f"{value!r} is not one of {', '.join(choices)}")

    # ------------------------------------------------------------ examples

    def _examples(self) -> None:
        kinds = {output.kind for output in self.spec.outputs}
        for index, example in enumerate(self.spec.examples):
            loc: tuple[str | int, ...] = ("examples", index)
            if example.event.payload_file is not None:
                self._payload_file((*loc, "event", "payload_file"), example.event.payload_file)
            if example.answer is not None:
                self.fits((*loc, "answer"), example.answer)
            for name in example.given:
                if name not in self.spec.read_names:
                    self.fail((*loc, "given", name), f"`{name}` is not read by this spec: `given` stands in for reads")
            for position, expect in enumerate(example.expect):
                where = (*loc, "expect", position)
                if expect.kind is not None and expect.kind not in kinds:
                    self.fail(where, f"this spec has no `{expect.kind}` output: it can never produce one")
                elif (
                    expect.kind is not None
                    and expect.field is not None
                    and expect.field not in INTENT_FIELDS[expect.kind]
                ):
                    fields = ", ".join(INTENT_FIELDS[expect.kind])
                    self.fail((*where, "field"), f"a {expect.kind} has no field {expect.field!r} (one of {fields})")

    def _payload_file(self, loc: Loc, name: str) -> None:
        if self.spec.source is None:
            self.fail(loc, "payload_file is relative to the spec's file, and this spec has none")
            return
        path = example_path(self.spec.source, name)
        try:
            payload = json.loads(path.read_text())
        except OSError as exc:
            self.fail(loc, f"{name!r} cannot be read: {exc.strerror or exc}")
            return
        except ValueError as exc:
            self.fail(loc, f"{name!r} is not JSON: {exc}")
            return
        if not isinstance(payload, dict):
            self.fail(loc, f"{name!r} holds a JSON {type(payload).__name__}, not a webhook payload (an object)")


def _where(loc: Loc) -> str:
    """`outputs[1].labels.add`: a location as a reader finds it in the file."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def example_path(spec_file: Path, name: str) -> Path:
    return spec_file.parent / name


def _strings(data: Any, path: tuple[str | int, ...] = ()) -> Iterable[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _strings(item, (*path, index))
    elif isinstance(data, dict):
        for key, item in data.items():
            yield from _strings(item, (*path, key))


def _undeclared(schema: dict[str, Any], path: tuple[str | int, ...]) -> str | None:
    """The dotted path up to the first part the schema does not declare; None when all is declared
    (or the schema leaves that part free-form: no `properties` to check against)."""
    node: Any = schema
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            return None
        if node.get("type") == "array" or isinstance(part, int):
            node = node.get("items")
            continue
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return None
        if part not in properties:
            if part in _DICT_METHODS and depth == len(path) - 1:
                return None
            return ".".join(str(p) for p in path[: depth + 1])
        node = properties[part]
    return None
