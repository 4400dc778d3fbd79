"""A spec's templates: Jinja2 in the sandbox, undefined names an error, outside text made inert.

Three renderings of one template language:

- **markdown** — what GitHub renders (a comment's, issue's, PR's or review's body). What the
  spec's author wrote is kept as written; every `{{ value }}` goes through `agents.markdown`
  (`md.text`: one inert line) unless a filter already made it inert Markdown: `text`, `code`,
  `prose`, `code_block`, and `lines` (several lines, each inert). `raw` lets a value through
  as it is, and is accepted on the author's own constants only (`checks` refuses it on
  anything else): text from the event or the answer never reaches GitHub unescaped.
- **plain** — titles, branch names, file contents, labels: values as they are.
- **prompt** — the instructions the model reads: each value is put inside
  `<untrusted_input>` tags (`agents.llm.untrusted`), lists and mappings as JSON, so the
  author's words are the task and everything from outside is material.

A field that is exactly one `{{ expr }}` is a **value** (`render_value`): the expression's
native result (a list of labels, a mapping of files), not its text.
Filters besides Jinja's own: `regex_search`, `regex_findall` and the Markdown ones above.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agents import markdown as md
from agents.llm import untrusted

Flavour = Literal["markdown", "plain", "prompt"]
_SINGLE_EXPRESSION = re.compile(r"\A\s*\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%).)*)\}\}\s*\Z", re.DOTALL)
REGEX_INPUT_MAX = 100_000  # characters a regex filter looks at

__all__ = ["TemplateSyntaxError", "UndefinedError"]


class Markdown(str):
    """Text that a filter made inert Markdown: the markdown rendering keeps it as it is."""


def _inert(value: Any) -> Markdown:
    return Markdown(md.text(value))


def _code(value: Any) -> Markdown:
    return Markdown(md.code(value))


def _prose(value: Any) -> Markdown:
    return Markdown(md.prose(value))


def _code_block(value: Any) -> Markdown:
    return Markdown(md.code_block(value))


def _lines(value: Any) -> Markdown:
    """Several lines of outside text, each inert, the line breaks (and so paragraphs) kept."""
    return Markdown("\n".join(md.text(line) for line in str(value).replace("\r\n", "\n").split("\n")))


def _raw(value: Any) -> Markdown:
    return Markdown(str(value))


def _regex_search(value: Any, pattern: str, group: int | str = 0, ignorecase: bool = False) -> str | None:
    found = re.search(pattern, str(value)[:REGEX_INPUT_MAX], re.IGNORECASE if ignorecase else 0)
    return found.group(group) if found else None


def _regex_findall(value: Any, pattern: str, ignorecase: bool = False) -> list[Any]:
    return re.findall(pattern, str(value)[:REGEX_INPUT_MAX], re.IGNORECASE if ignorecase else 0)


def _contains(value: Any, item: Any) -> bool:
    """The test `contains`: a list (or a text) holding `item`; anything else holds nothing."""
    return isinstance(value, list | tuple | str) and item in value


def _markdown_finalize(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, Markdown) else md.text(value)


def _plain_finalize(value: Any) -> Any:
    return "" if value is None else value


def _prompt_finalize(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return untrusted(json.dumps(value, ensure_ascii=False, indent=1, default=str))
    return untrusted(str(value))


def _environment(finalize: Callable[[Any], Any]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters.update(
        regex_search=_regex_search,
        regex_findall=_regex_findall,
        text=_inert,
        code=_code,
        prose=_prose,
        code_block=_code_block,
        lines=_lines,
        raw=_raw,
    )
    env.tests["contains"] = _contains  # `issues | selectattr("labels", "contains", "lead:new")`
    return env


_ENVIRONMENTS: dict[Flavour, ImmutableSandboxedEnvironment] = {
    "markdown": _environment(_markdown_finalize),
    "plain": _environment(_plain_finalize),
    "prompt": _environment(_prompt_finalize),
}
SANDBOX = _ENVIRONMENTS["plain"]  # parsing and expressions
_GLOBALS = frozenset(SANDBOX.globals) | {"loop"}  # range, dict, lipsum …, and a for loop's `loop`


@lru_cache(maxsize=4096)
def _template(flavour: Flavour, source: str) -> Template:
    return _ENVIRONMENTS[flavour].from_string(source)


@lru_cache(maxsize=4096)
def _expression(source: str) -> Callable[..., Any]:
    return SANDBOX.compile_expression(source, undefined_to_none=False)


def render(source: str, values: Mapping[str, Any], flavour: Flavour = "plain") -> str:
    """The template's text; a name or attribute that is not there raises UndefinedError."""
    return _template(flavour, source).render(values)


def single_expression(source: str) -> str | None:
    """The expression of a field that is exactly one `{{ expr }}`, else None."""
    found = _SINGLE_EXPRESSION.match(source)
    return found.group("expr").strip() if found else None


def evaluate(expression: str, values: Mapping[str, Any]) -> Any:
    result = _expression(expression)(**values)
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()  # StrictUndefined: says which name or attribute is missing
    return result


def render_value(source: str, values: Mapping[str, Any]) -> Any:
    """A single `{{ expr }}`: its native value; any other text: rendered plain."""
    expression = single_expression(source)
    return evaluate(expression, values) if expression is not None else render(source, values)


def render_data(data: Any, values: Mapping[str, Any]) -> Any:
    """Every string inside lists and mappings rendered as a value (a deterministic answer, a fallback)."""
    if isinstance(data, str):
        return render_value(data, values)
    if isinstance(data, list):
        return [render_data(item, values) for item in data]
    if isinstance(data, dict):
        return {str(render_data(key, values)): render_data(item, values) for key, item in data.items()}
    return data


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


# ------------------------------------------------------------------ what the checks read from a template


def parse(source: str) -> nodes.Template:
    """The template's tree; TemplateSyntaxError when it does not parse."""
    return SANDBOX.parse(source)


def parse_expression(expression: str) -> nodes.Template:
    return SANDBOX.parse("{{ (" + expression + ") }}")


def names(tree: nodes.Template) -> dict[str, int]:
    """The variables a template reads from outside (not those it sets itself), each with its first line."""
    # Names a template sets (a loop's, `set`, a macro's parameters) are its own wherever they are: a
    # name used outside the block that sets it is left to the run, where it is undefined (an error).
    names = list(tree.find_all(nodes.Name))
    own = {node.name for node in names if node.ctx in ("store", "param")}
    lines: dict[str, int] = {}
    for node in names:
        if node.ctx == "load" and node.name not in own and node.name not in _GLOBALS:
            lines.setdefault(node.name, node.lineno)
    return lines


def paths_of(tree: nodes.Template, root: str) -> list[tuple[tuple[str | int, ...], int]]:
    """Each `root.a.b` (or `root["a"]`, `root.get("a")`) in the tree, as the path after `root`, with its line."""
    found: list[tuple[tuple[str | int, ...], int]] = []

    def visit(node: nodes.Node) -> None:
        path = _path(node, root)
        if path is not None:
            found.append((path, node.lineno))
            return
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return found


def _path(node: nodes.Node, root: str) -> tuple[str | int, ...] | None:
    """The path a node reads from `root`, for the outermost node of a chain only."""
    parts: list[str | int] = []
    current: nodes.Node = node
    while True:
        if isinstance(current, nodes.Call):
            getter = current.node
            if not (
                isinstance(getter, nodes.Getattr)
                and getter.attr == "get"
                and current.args
                and isinstance(current.args[0], nodes.Const)
            ):
                return None
            parts.append(current.args[0].value)
            current = getter.node
        elif isinstance(current, nodes.Getattr):
            parts.append(current.attr)
            current = current.node
        elif isinstance(current, nodes.Getitem) and isinstance(current.arg, nodes.Const):
            parts.append(current.arg.value)
            current = current.node
        elif isinstance(current, nodes.Name) and current.name == root:
            return tuple(reversed(parts)) or None
        else:
            return None


def raw_on_outside_text(tree: nodes.Template) -> int | None:
    """The line of a `raw` filter applied to anything but a constant the author wrote, if any."""
    for node in tree.find_all(nodes.Filter):
        if node.name == "raw" and not isinstance(node.node, nodes.Const):
            return node.lineno
    return None
