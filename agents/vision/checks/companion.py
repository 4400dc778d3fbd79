"""`companion` rules: changing A requires changing B in the same change.

With `when: schema`, only a change to the schema that A declares counts: the fields of
its Python classes (class-level assignments and annotations, bases and keywords,
nested classes such as Django's `Meta`) and module-level `Table(...)` definitions,
compared as syntax trees at the base and the head, so method bodies, docstrings,
comments and formatting do not. A file that is not Python, or that cannot be read or
parsed on either side, counts as changed: the rule stays as strict as without `when`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.diff import FileDiff
from agents.vision.findings import Finding
from agents.vision.globs import matches_any
from agents.vision.policy import CompanionRule


def check_companion(rule: CompanionRule, scope: Scope) -> Iterator[Finding]:
    triggers = [file.path for file in scope.files_for(rule) if rule.when == "changed" or _schema_changed(file, scope)]
    if not triggers:
        return
    # Every changed path counts as a companion, even ones the config ignores or the
    # file cap left out: the question is only whether the change touches them.
    changed = [f.path for f in scope.diff.files] + [f.old_path for f in scope.diff.files if f.old_path]
    if any(matches_any(path, rule.requires) for path in [*changed, *scope.diff.omitted]):
        return
    shown = ", ".join(f"`{path}`" for path in triggers[:3]) + (
        f" and {len(triggers) - 3} more" if len(triggers) > 3 else ""
    )
    what = f"the schema in {shown}" if rule.when == "schema" else shown
    wanted = ", ".join(f"`{glob}`" for glob in rule.requires)
    yield finding(rule, triggers[0], detail=f"{what} changed, but nothing matching {wanted}", content="companion")


def _schema_changed(file: FileDiff, scope: Scope) -> bool:
    if not file.path.endswith(".py"):
        return True
    after = b"" if file.is_removed else scope.content(file.path)
    before = scope.base_content(file)
    if after is None or before is None:
        return True
    try:
        return schema_of(before) != schema_of(after)
    except (SyntaxError, ValueError):
        return True


def schema_of(source: bytes) -> list[str]:
    """What a Python module declares as data: each class's bases, keywords and class-level
    fields (nested classes too), and module-level `Table(...)` assignments, normalised."""
    declared: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            declared += _class_schema(node, prefix="")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and _calls_table(node.value):
            declared.append(ast.unparse(node))
    return declared


def _class_schema(node: ast.ClassDef, prefix: str) -> list[str]:
    name = f"{prefix}{node.name}"
    header = ", ".join([*map(ast.unparse, node.bases), *map(ast.unparse, node.keywords)])
    declared = [f"class {name}({header})"]
    for statement in node.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            declared.append(f"{name}: {ast.unparse(statement)}")
        elif isinstance(statement, ast.ClassDef):
            declared += _class_schema(statement, prefix=f"{name}.")
    return declared


def _calls_table(value: ast.expr | None) -> bool:
    if not isinstance(value, ast.Call):
        return False
    called = value.func
    return (isinstance(called, ast.Name) and called.id == "Table") or (
        isinstance(called, ast.Attribute) and called.attr == "Table"
    )
