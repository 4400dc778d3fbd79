"""`layering` rules: Python imports between packages, read from the syntax tree.

The file is parsed as it is at the head commit, so multi-line and relative imports
resolve exactly. An import statement is reported when the change adds one of its lines
that says `import`: the change introduces that dependency. Adding a name inside an
existing `from x import (...)` does not, and a file none of whose added lines says
`import` is not parsed at all, which keeps the check cheap.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from agents.vision.checks.base import Scope, finding
from agents.vision.checks.plugins import is_pytest_plugin
from agents.vision.findings import Finding
from agents.vision.policy import LayeringRule


def module_of(path: str, root: str) -> tuple[str, bool] | None:
    """(`pkg.mod`, is_package) for a .py path under `root`, or None."""
    if not path.endswith(".py"):
        return None
    prefix = root.strip("/") + "/" if root.strip("/") else ""
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix) : -3].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _within(module: str, packages: list[str]) -> str | None:
    for package in packages:
        if module == package or module.startswith(package + "."):
            return package
    return None


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Every module an import statement may load, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if is_package else module.rpartition(".")[0]
        parts = package.split(".") if package else []
        if node.level - 1 > len(parts):
            return []  # beyond the top-level package: Python would refuse it too
        kept = parts[: len(parts) - (node.level - 1)]
        base = ".".join(kept + ([node.module] if node.module else []))
    names = [f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*"]
    return ([base] if base else []) + names


def check_layering(rule: LayeringRule, scope: Scope) -> Iterator[Finding]:
    for file in scope.text_files_for(rule):
        located = module_of(file.path, rule.root)
        if located is None:
            continue
        module, is_package = located
        if rule.packages and _within(module, rule.packages) is None:
            continue
        added = {line.number: line.text for line in file.added_lines()}
        if not any("import" in text for text in added.values()):
            continue
        tree = scope.python_tree(file.path)
        if isinstance(tree, str):
            scope.skip(rule, file.path, tree)
            continue
        found = list(_forbidden_imports(rule, file.path, tree, added, module, is_package))
        if found and not (rule.exempt_pytest_plugins and is_pytest_plugin(file.path, tree, scope)):
            yield from found


def _forbidden_imports(
    rule: LayeringRule, path: str, tree: ast.Module, added: dict[int, str], module: str, is_package: bool
) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        end = node.end_lineno or node.lineno
        if not any("import" in added.get(number, "") for number in range(node.lineno, end + 1)):
            continue
        for target in imported_modules(node, module, is_package):
            if _within(target, rule.forbidden) is not None:
                yield finding(
                    rule,
                    path,
                    line=node.lineno,
                    end_line=end,
                    detail=f"`{module}` imports `{target}`",
                    content=f"{module}->{target}",
                )
                break
