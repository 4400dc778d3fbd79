"""The shape of the code base that STYLE.md asks for and a reviewer would otherwise have to count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_LINES = 600


def modules() -> list[Path]:
    return sorted(path for package in ("agents", "bot") for path in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_is_over_600_lines():
    lines = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in modules()}
    assert {path: n for path, n in lines.items() if n > MODULE_LINES} == {}


def test_a_command_imports_the_wiring_not_another_command_or_the_app():
    commands = {path.stem: path for path in (ROOT / "bot").glob("*_cli.py")}

    def reached(path: Path) -> list[str]:
        others = {f"bot.{name}" for name in commands} | {"bot.app"}
        return sorted(imported(path) & others)

    reaching = {name: reached(path) for name, path in commands.items()}
    assert reaching == {name: [] for name in commands}
