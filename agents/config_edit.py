"""`.github/waooaw.yml` with an agent hired or fired — the `agents.enable` / `agents.disable`
lists — or rule overrides set (`set_rules`), edited in the file's own text, everything else
left as it was written.

A YAML round-trip would rewrite the whole file (its comments, quoting and order lost, with
PyYAML) or need a second YAML library; the lists are small and their place is known, so
only their text is replaced: each list node's span, found through the composed node tree's
marks, or a new key after the section's last line. The result is parsed again and must
equal the old config but for those two lists; when it does not (a layout the edit does
not foresee), the whole file is written out from its data instead, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from agents.vision.config import CONFIG_PATH, RepoConfig, parse_config

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LISTS = ("enable", "disable")


@dataclass(frozen=True)
class Edited:
    text: str
    enable: tuple[str, ...]
    disable: tuple[str, ...]
    kept_layout: bool  # False: rewritten from its data (comments and layout lost)


def wanted_lists(config: RepoConfig, name: str, *, hire: bool, hire_required: bool) -> dict[str, list[str]]:
    """The lists after hiring (or firing) `name`, by the smallest change: an agent on by default is
    hired by taking it off `disable`, one that must be hired by putting it on `enable`."""
    enable, disable = list(config.agents.enable), list(config.agents.disable)
    if hire:
        disable = [item for item in disable if item != name]
        if hire_required and name not in enable:
            enable.append(name)
    else:
        enable = [item for item in enable if item != name]
        if not hire_required and name not in disable:
            disable.append(name)
    return {"enable": enable, "disable": disable}


def edit(text: str | None, name: str, *, hire: bool, hire_required: bool) -> Edited | None:
    """The file with `name` hired or fired; None when it already says so. Raises ConfigError when the
    file as it stands is invalid (the edit would hide its problems)."""
    config = parse_config(text)
    lists = wanted_lists(config, name, hire=hire, hire_required=hire_required)
    changed = {key: items for key, items in lists.items() if items != getattr(config.agents, key)}
    if not changed:
        return None
    enable, disable = tuple(lists["enable"]), tuple(lists["disable"])
    if not (text or "").strip():
        return Edited(_render_new(changed), enable, disable, True)
    expected = _with_lists(_data(text), changed)
    try:
        edited = _edit_text(text or "", changed)
        if _data(edited) == expected:
            parse_config(edited)
            return Edited(edited, enable, disable, True)
    except (yaml.YAMLError, ValueError, _Unforeseen):
        pass
    dumped = yaml.safe_dump(expected, sort_keys=False, default_flow_style=False, allow_unicode=True)
    parse_config(dumped)
    return Edited(dumped, enable, disable, False)


class _Unforeseen(Exception):
    """A layout the text edit does not handle: the file is written out from its data."""


def _data(text: str | None) -> dict[str, Any]:
    loaded = yaml.load(text or "", Loader=_LOADER)
    return loaded if isinstance(loaded, dict) else {}


def _with_lists(data: dict[str, Any], changed: dict[str, list[str]]) -> dict[str, Any]:
    agents = dict(data.get("agents") or {})
    agents.update(changed)
    return {**data, "agents": agents}


def _render_new(changed: dict[str, list[str]]) -> str:
    return "agents:\n" + "".join(_block_key(key, items, "  ") for key, items in changed.items() if items)


def _block_key(key: str, items: list[str], indent: str) -> str:
    return f"{indent}{key}:\n" + "".join(f"{indent}  - {item}\n" for item in items)


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _edit_text(text: str, changed: dict[str, list[str]]) -> str:
    root = yaml.compose(text, Loader=_LOADER)
    if root is not None and (not isinstance(root, yaml.MappingNode) or root.flow_style):
        raise _Unforeseen("the file is not a block mapping")
    agents = _value(root, "agents") if root is not None else None
    if agents is None:
        tail = "" if text.endswith("\n") else "\n"
        return text + tail + _render_new(changed)
    edits: list[tuple[int, int, str]] = []
    if isinstance(agents, yaml.ScalarNode):  # `agents:` with nothing under it
        flow = "{" + ", ".join(f"{key}: {_flow(items)}" for key, items in changed.items() if items) + "}"
        assert root is not None
        edits.append(_null_span(text, root, agents, flow))
    elif isinstance(agents, yaml.MappingNode) and agents.flow_style:
        section = _with_lists(_data(text), changed)["agents"]
        flow = yaml.safe_dump(section, default_flow_style=True, sort_keys=False, width=1_000_000).strip()
        edits.append((agents.start_mark.index, agents.end_mark.index, flow))
    elif isinstance(agents, yaml.MappingNode):
        missing: list[str] = []
        for key, items in changed.items():
            found = _entry(agents, key)
            if found is None:
                if items:
                    missing.append(key)
            elif isinstance(found[1], yaml.ScalarNode):
                edits.append(_null_span(text, agents, found[1], _flow(items)))
            else:
                edits.extend(_replace_list(text, *found, items))
        if missing:
            indent = " " * agents.value[0][0].start_mark.column
            at = _line_end(text, _last_scalar_end(agents))
            added = "".join(_block_key(key, changed[key], indent) for key in missing)
            edits.append((at, at, "\n" + added.rstrip("\n")))
    else:
        raise _Unforeseen("agents is a list")
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _replace_list(text: str, key: yaml.Node, node: yaml.Node, items: list[str]) -> list[tuple[int, int, str]]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Unforeseen("a list is a mapping")
    if node.flow_style or not node.value:
        return [(node.start_mark.index, node.end_mark.index, _flow(items))]
    if not items:  # a block list emptied: `key: []` on the key's line
        colon = text.index(":", key.end_mark.index) + 1
        return [(colon, _last_scalar_end(node), " []")]
    # A block list: the lines of the items that go are deleted, new items are added after the last
    # one, so that the comments beside the items that stay stay with them.
    if not all(isinstance(item, yaml.ScalarNode) and "\n" not in item.value for item in node.value):
        raise _Unforeseen("a list of more than names")
    edits: list[tuple[int, int, str]] = []
    current = [item.value for item in node.value]
    for item in node.value:
        if item.value not in items:
            start = text.rfind("\n", 0, item.start_mark.index) + 1
            if text[start : item.start_mark.index].strip() != "-":
                raise _Unforeseen("an item that does not start its line")
            edits.append((start, min(_line_end(text, item.end_mark.index) + 1, len(text)), ""))
    added = [item for item in items if item not in current]
    if added:
        indent = " " * node.start_mark.column
        at = _line_end(text, _last_scalar_end(node))
        edits.append((at, at, "".join(f"\n{indent}- {item}" for item in added)))
    return edits


def _entry(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value
    return None


def _value(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    found = _entry(mapping, key)
    return found[1] if found is not None else None


def _null_span(text: str, mapping: yaml.MappingNode, value: yaml.ScalarNode, flow: str) -> tuple[int, int, str]:
    """Replace a null value (`key:` with nothing, `~` or `null`) with `flow`."""
    if value.value not in ("", "~", "null"):
        raise _Unforeseen("a scalar where a list or a mapping belongs")
    if value.start_mark.index != value.end_mark.index:
        return value.start_mark.index, value.end_mark.index, flow
    # Nothing written: the empty node's marks may lie on a later line; the value goes after the colon.
    key = next(k for k, v in mapping.value if v is value)
    colon = text.index(":", key.end_mark.index) + 1
    return colon, colon, " " + flow


def _last_scalar_end(node: yaml.Node) -> int:
    """Where the text of a block node's last value ends (a block collection's own end mark lies
    past the comments and blank lines after it)."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_scalar_end(node.value[-1][1])
    if isinstance(node, yaml.MappingNode) and not node.value:
        raise _Unforeseen("an empty block mapping")
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_scalar_end(node.value[-1])
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        raise _Unforeseen("a block scalar ends where its indentation does")
    index: int = node.end_mark.index
    return index


def _line_end(text: str, index: int) -> int:
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline


def set_rules(text: str | None, overrides: dict[str, Any]) -> tuple[str, bool]:
    """The file with `rules.<id>` set to each of `overrides` (a value as YAML loads it: a severity,
    False for `off`, or a mapping of the full form), and whether its layout was kept. Each value is
    replaced in place (a comment after it stays); a rule not there yet goes after the last one."""
    data = _data(text)
    expected = {**data, "rules": {**(data.get("rules") or {}), **overrides}}
    if not (text or "").strip():
        return _render_rules(overrides, "rules:\n"), True
    try:
        edited = _edit_rules(text or "", overrides)
        if _data(edited) == expected:
            parse_config(edited)
            return edited, True
    except (yaml.YAMLError, ValueError, _Unforeseen):
        pass
    dumped = yaml.safe_dump(expected, sort_keys=False, default_flow_style=False, allow_unicode=True)
    parse_config(dumped)
    return dumped, False


def _rule_value(value: Any) -> str:
    if value is False:
        return "off"
    return (
        str(yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000))
        .strip()
        .removesuffix("\n...")
    )


def _render_rules(overrides: dict[str, Any], head: str, indent: str = "  ") -> str:
    return head + "".join(f"{indent}{rule}: {_rule_value(value)}\n" for rule, value in overrides.items())


def _edit_rules(text: str, overrides: dict[str, Any]) -> str:
    root = yaml.compose(text, Loader=_LOADER)
    if root is not None and (not isinstance(root, yaml.MappingNode) or root.flow_style):
        raise _Unforeseen("the file is not a block mapping")
    rules = _value(root, "rules") if root is not None else None
    if rules is None:
        return text + ("" if text.endswith("\n") else "\n") + _render_rules(overrides, "rules:\n")
    assert root is not None
    flow = "{" + ", ".join(f"{rule}: {_rule_value(value)}" for rule, value in overrides.items()) + "}"
    edits: list[tuple[int, int, str]] = []
    if isinstance(rules, yaml.ScalarNode):  # `rules:` with nothing under it
        edits.append(_null_span(text, root, rules, flow))
    elif isinstance(rules, yaml.MappingNode) and rules.flow_style:
        merged = {**(_data(text).get("rules") or {}), **overrides}
        written = yaml.safe_dump(merged, default_flow_style=True, sort_keys=False, width=1_000_000).strip()
        edits.append((rules.start_mark.index, rules.end_mark.index, written))
    elif isinstance(rules, yaml.MappingNode):
        missing: dict[str, Any] = {}
        for rule, value in overrides.items():
            found = _entry(rules, rule)
            if found is None:
                missing[rule] = value
                continue
            colon = text.index(":", found[0].end_mark.index) + 1
            edits.append((colon, _last_scalar_end(found[1]), " " + _rule_value(value)))
        if missing:
            indent = " " * rules.value[0][0].start_mark.column
            at = _line_end(text, _last_scalar_end(rules))
            edits.append((at, at, "\n" + _render_rules(missing, "", indent).rstrip("\n")))
    else:
        raise _Unforeseen("rules is a list")
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


__all__ = ["CONFIG_PATH", "Edited", "edit", "set_rules", "wanted_lists"]
