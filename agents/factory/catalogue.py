"""The catalogue: every spec of some directories, loaded all or nothing.

A directory's specs are its `*.yaml` and `*.yml` files, at any depth, except those under an
`examples/` directory (example payloads and their companions) and a CoE's RACI matrix
(`raci.yaml`). One invalid spec, or two specs with one name, and nothing is loaded: the
error lists every problem of every file, so a start refuses with all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from agents.factory.spec import AgentSpec, SpecError, load_spec
from agents.vision.yamlsource import Problem, SourceError

BUILTIN_SPECS = Path(__file__).resolve().parents[1] / "specs"  # agents/specs/<coe>/<name>.yaml
SPEC_SUFFIXES = (".yaml", ".yml")
NOT_SPECS = frozenset({"raci.yaml", "raci.yml"})


class CatalogueError(ValueError):
    """Specs that cannot be loaded, each with its problems."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        self.errors = tuple(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def spec_files(paths: Iterable[Path]) -> tuple[list[Path], list[SourceError]]:
    """The spec files that `paths` (files or directories) name, sorted; and the paths that name none."""
    found: list[Path] = []
    missing: list[SourceError] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(
                file
                for file in path.rglob("*")
                if file.suffix in SPEC_SUFFIXES
                and file.name not in NOT_SPECS
                and "examples" not in file.relative_to(path).parts[:-1]
                and file.is_file()
            )
        else:
            missing.append(SpecError(str(path), [Problem(None, "", "no such file or directory")]))
    return found, missing


def load_specs(paths: Iterable[Path]) -> list[AgentSpec]:
    """Every spec of `paths`, or CatalogueError with every problem (names unique across them all)."""
    files, errors = spec_files(paths)
    specs: list[AgentSpec] = []
    for file in files:
        try:
            specs.append(load_spec(file))
        except SourceError as error:
            errors.append(error)
    first: dict[str, AgentSpec] = {}
    for spec in specs:
        if spec.name in first:
            where = f"{first[spec.name].source}"
            errors.append(SpecError(str(spec.source), [Problem(1, "name", f"{spec.name!r} is taken by {where}")]))
        first.setdefault(spec.name, spec)
    if errors:
        raise CatalogueError(errors)
    return specs


def load_catalogue(dirs: Sequence[Path]) -> list[AgentSpec]:
    """The specs of the built-in directory (when there is one) and of `dirs` (each must exist)."""
    builtin = [BUILTIN_SPECS] if BUILTIN_SPECS.is_dir() else []
    return load_specs([*builtin, *(d for d in dirs if d.resolve() != BUILTIN_SPECS)])
