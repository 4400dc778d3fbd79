"""YAML files validated by pydantic, with errors that name the file and the line.

The text is composed into a node tree first (every node carries its position), then
constructed into plain data and validated. A pydantic error's location — a path of
keys and indexes such as `rules → 2 → regex` — is walked down the node tree to the
node it names, so the message points at the line a user must fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[str | int]
# libyaml's loader when PyYAML has it: ten times faster, and every `waooaw vision check` reads the packs
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    line: int | None
    where: str
    message: str


class SourceError(ValueError):
    """A file that cannot be used, with each problem located (`file:line: where: message`)."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(str(self))

    @property
    def line(self) -> int | None:
        """The line of the first problem: where to send the user first."""
        return self.problems[0].line if self.problems else None

    def __str__(self) -> str:
        lines = []
        for problem in self.problems:
            place = f"{self.source}:{problem.line}" if problem.line else self.source
            where = f" {problem.where}:" if problem.where else ""
            lines.append(f"{place}:{where} {problem.message}")
        return "\n".join(lines)


class YamlDocument:
    """One YAML document: its data, and a way back from a location to a line."""

    def __init__(self, text: str | bytes, source: str, error: type[SourceError]) -> None:
        self.source = source
        self.error = error
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        loader = _LOADER(text)
        try:
            self.root: yaml.Node | None = loader.get_single_node()
            self.data: Any = loader.construct_document(self.root) if self.root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise error(source, [Problem(line, "", f"not valid YAML: {exc.problem or exc.context}")]) from None
        except yaml.YAMLError as exc:
            raise error(source, [Problem(None, "", f"not valid YAML: {exc}")]) from None
        finally:
            loader.dispose()
        duplicates = list(_duplicate_keys(self.root))
        if duplicates:
            raise error(source, duplicates)

    def node_at(self, loc: Loc) -> yaml.Node | None:
        """The deepest node of the location that exists in the file."""
        node = self.root
        for part in loc:
            child = _child(node, part)
            if child is not None:
                node = child
        return node

    def line_of(self, loc: Loc) -> int | None:
        node = self.node_at(loc)
        return node.start_mark.line + 1 if node is not None else None

    def fail(self, loc: Loc, message: str) -> SourceError:
        return self.error(self.source, [Problem(self.line_of(loc), _where(self.root, loc), message)])

    def validate(self, model: type[M], *, empty: Any = None) -> M:
        """Validate the data as `model`; an empty document validates `empty` instead."""
        data = self.data if self.data is not None else empty
        if not isinstance(data, dict):
            found = "nothing" if data is None else type(data).__name__
            raise self.error(
                self.source,
                [Problem(self.line_of(()) or 1, "", f"expected a mapping of keys to values, found {found}")],
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                loc = list(error["loc"])
                if error["type"] == "union_tag_invalid":
                    loc.append("kind")
                problems.append(Problem(self.line_of(loc), _where(self.root, loc), _message(error)))
            raise self.error(self.source, problems) from None


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                child: yaml.Node = value
                return child
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


def _is_tag(node: yaml.Node | None, part: str | int) -> bool:
    """A tagged union's tag in a location: the value of one of the mapping's keys (`kind: size`)."""
    return isinstance(node, yaml.MappingNode) and any(
        isinstance(value, yaml.ScalarNode) and value.value == part for _, value in node.value
    )


def _where(root: yaml.Node | None, loc: Loc) -> str:
    """`rules[2].regex`: the parts of a location that exist in the file (not pydantic's tags)."""
    out, node = "", root
    for part in loc:
        child = _child(node, part)
        if child is None:
            if _is_tag(node, part):
                continue
            if isinstance(node, yaml.MappingNode) and isinstance(part, str) and part.isidentifier():
                out += f".{part}" if out else part  # a missing key: name it
            break
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        node = child
    return out


def _message(error: ErrorDetails) -> str:
    message = str(error["msg"])
    if error["type"] == "missing":
        return "required, but missing"
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling)"
    return message.removeprefix("Value error, ")


def _duplicate_keys(node: yaml.Node | None) -> Any:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    yield Problem(line, str(key.value), f"duplicate key (first at line {seen[key.value]})")
                seen.setdefault(key.value, line)
            yield from _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)
