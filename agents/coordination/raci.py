"""A CoE's RACI matrix, `agents/specs/<coe>/raci.yaml`: for each task kind, who is Responsible,
Accountable, Consulted and Informed.

```yaml
tasks:
  bug-report:
    responsible: [tech-support]      # one of them is picked per task
    accountable: customer-success    # signs the work off with a `result` message
    consulted: []                    # each gets a `request`
    informed: ["engineering:bug-fix"]  # each gets an `inform`
```

A name is an agent of the CoE's catalogue, or a role `COE:ROLE`. A file that breaks a rule is
refused with each problem as `FILE:LINE: where: message`, like an agent spec.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.factory.catalogue import CatalogueError
from agents.messages import AGENT_NAME, ROLE
from agents.vision.yamlsource import Problem, SourceError, YamlDocument

RACI_FILE = "raci.yaml"
TASK_KIND = re.compile(r"[a-z][a-z0-9-]{0,39}")
COORDINATOR_ROLE = "coordinator"  # `COE:coordinator`: a message to it names its task kind in its body


class RaciError(SourceError):
    """A RACI matrix that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskRaci(_Strict):
    responsible: list[str] = Field(min_length=1, max_length=200)
    accountable: str
    consulted: list[str] = Field(default_factory=list, max_length=200)
    informed: list[str] = Field(default_factory=list, max_length=200)


class RaciFile(_Strict):
    tasks: dict[str, TaskRaci] = Field(min_length=1)


@dataclass(frozen=True)
class Raci:
    coe: str
    tasks: Mapping[str, TaskRaci]
    source: str

    def roles(self) -> tuple[str, ...]:
        """The roles the CoE's coordinator answers to: `COE:coordinator` and `COE:KIND` for each task kind."""
        return (f"{self.coe}:{COORDINATOR_ROLE}", *(f"{self.coe}:{kind}" for kind in self.tasks))


def load_raci(path: Path, coe: str, agents: Collection[str]) -> Raci:
    """The matrix at `path` of the CoE `coe`, whose agents (its catalogue's) are `agents`; or RaciError
    with every problem and its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RaciError(str(path), [Problem(None, "", f"cannot read it: {exc.strerror or exc}")]) from None
    document = YamlDocument(text, str(path), RaciError)
    parsed = document.validate(RaciFile)
    problems: list[Problem] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        failed = document.fail(loc, message)
        problems.extend(failed.problems)

    def key_problem(kind: str, message: str) -> None:
        problems.append(Problem(_key_line(document, kind), f"tasks.{kind}", message))

    for kind, task in parsed.tasks.items():
        if not TASK_KIND.fullmatch(kind):
            key_problem(kind, f"task kind {kind!r}: lower case letters, digits and '-', at most 40")
        elif kind == COORDINATOR_ROLE:
            key_problem(kind, f"{kind!r} is the coordinator's own role; name the task otherwise")
        names: list[tuple[tuple[str | int, ...], str]] = [
            *((("tasks", kind, "responsible", i), name) for i, name in enumerate(task.responsible)),
            (("tasks", kind, "accountable"), task.accountable),
            *((("tasks", kind, "consulted", i), name) for i, name in enumerate(task.consulted)),
            *((("tasks", kind, "informed", i), name) for i, name in enumerate(task.informed)),
        ]
        for loc, name in names:
            role = ROLE.fullmatch(name)
            if role is not None:
                if role.group("coe") == coe and role.group("role") in parsed.tasks and loc[2] == "responsible":
                    problem(loc, f"{name!r} is this CoE's task kind, which its coordinator answers to")
                continue
            if not AGENT_NAME.fullmatch(name):
                problem(loc, f"{name!r}: an agent's name, or a role as COE:ROLE (lower case)")
            elif name not in agents:
                known = ", ".join(sorted(agents)) or "none"
                problem(loc, f"{name!r} is not an agent of the {coe} CoE (its agents: {known}), nor a role COE:ROLE")
        if len(set(task.responsible)) != len(task.responsible):
            problem(("tasks", kind, "responsible"), "a name is listed twice")
    if problems:
        raise RaciError(str(path), problems)
    return Raci(coe=coe, tasks=dict(parsed.tasks), source=str(path))


def _key_line(document: YamlDocument, kind: str) -> int | None:
    """The line of a task kind's key (the line a user must fix), not of its value."""
    tasks = document.node_at(("tasks",))
    if isinstance(tasks, yaml.MappingNode):
        for key, _ in tasks.value:
            if isinstance(key, yaml.ScalarNode) and key.value == kind:
                return int(key.start_mark.line) + 1
    return document.line_of(("tasks", kind))


def raci_files(dirs: Iterable[Path]) -> dict[str, Path]:
    """`<dir>/<coe>/raci.yaml` of each directory, by CoE (a later directory's file wins)."""
    found: dict[str, Path] = {}
    for directory in dirs:
        if directory.is_dir():
            for path in sorted(directory.glob(f"*/{RACI_FILE}")):
                found[path.parent.name] = path
    return found


def load_matrices(dirs: Iterable[Path], agents_by_coe: Mapping[str, Collection[str]]) -> list[Raci]:
    """Every CoE's matrix in `dirs`, all or nothing: CatalogueError with every problem of every file."""
    matrices: list[Raci] = []
    errors: list[SourceError] = []
    for coe, path in raci_files(dirs).items():
        try:
            matrices.append(load_raci(path, coe, agents_by_coe.get(coe, ())))
        except SourceError as error:
            errors.append(error)
    if errors:
        raise CatalogueError(errors)
    return matrices
