"""The README's two set-up commands are the ones CI and users actually run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL)]


def test_readme_has_a_run_command_and_a_test_command():
    commands = readme_commands()
    assert any("waooaw serve" in command and "pip install" in command for command in commands)
    assert any("pytest" in command and "pip install" in command for command in commands)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(command for command in readme_commands() if "pytest" in command)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_the_test_command_lints_and_type_checks_before_the_tests():
    test_command = next(command for command in readme_commands() if "pytest" in command)
    steps = [step.strip() for step in test_command.split("&&")]
    checks = [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"]
    assert all(check in steps for check in checks), steps
    assert max(steps.index(check) for check in checks) < steps.index(".venv/bin/python -m pytest")
