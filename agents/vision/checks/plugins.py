"""Whether a Python module is a pytest plugin: importing pytest is its job.

A module is one when it is named like one (`conftest.py`, `pytest_*.py`,
`*pytest_plugin*.py`, or inside a `pytest_*` package), when it sets `pytest_plugins`
or defines a `pytest_*` hook at top level, or when the repository's packaging
(`pyproject.toml`, `setup.cfg`, `setup.py` at its root, head commit) names it, or a
package holding it, under the `pytest11` entry point group.
"""

from __future__ import annotations

import ast
import configparser
import re
import tomllib
from collections.abc import Iterator

from agents.vision.checks.base import Scope

_ENTRY = re.compile(r"[\w.-]+\s*=\s*([\w.]+)")  # `name = module[:attr]`
_SETUP_PY_GROUP = re.compile(r"""["']pytest11["']\s*:\s*\[([^\]]*)\]""")  # "pytest11": ["…", …]


def is_pytest_plugin(path: str, tree: ast.Module, scope: Scope) -> bool:
    if _named_like_one(path) or _declares_one(tree):
        return True
    # `src/pkg/plugin.py` is `pkg.plugin` whatever the source root: match dotted segments
    module = "." + path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") + "."
    return any(f".{entry}." in module for entry in _entry_points(scope))


def _named_like_one(path: str) -> bool:
    *folders, name = path.split("/")
    return (
        name == "conftest.py"
        or name.startswith("pytest_")
        or "pytest_plugin" in name
        or any(folder.startswith("pytest_") for folder in folders)
    )


def _declares_one(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("pytest_"):
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == "pytest_plugins" for target in targets):
                return True
    return False


def _entry_points(scope: Scope) -> Iterator[str]:
    """The modules the root packaging files register as pytest11 entry points."""
    pyproject = scope.content("pyproject.toml")
    if pyproject is not None:
        try:
            data = tomllib.loads(pyproject.decode("utf-8", "replace"))
        except tomllib.TOMLDecodeError:
            data = {}
        groups = [
            data.get("project", {}).get("entry-points", {}).get("pytest11", {}),
            data.get("tool", {}).get("poetry", {}).get("plugins", {}).get("pytest11", {}),
        ]
        for group in groups:
            if isinstance(group, dict):
                yield from (str(value).split(":")[0].strip() for value in group.values())
    setup_cfg = scope.content("setup.cfg")
    if setup_cfg is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg.decode("utf-8", "replace"))
            yield from _ENTRY.findall(parser.get("options.entry_points", "pytest11", fallback=""))
        except configparser.Error:
            pass
    setup_py = scope.content("setup.py")
    if setup_py is not None:
        for group in _SETUP_PY_GROUP.findall(setup_py.decode("utf-8", "replace")):
            yield from _ENTRY.findall(group)
