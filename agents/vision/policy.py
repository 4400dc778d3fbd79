"""Policy packs: the rules WowVision applies, as validated YAML.

A pack is one YAML file::

    name: hygiene                      # how the repository config refers to it
    description: Leftovers that should not be merged.
    rules:
      - id: hygiene-breakpoint         # unique across the packs a repository applies
        kind: pattern                  # pattern | secret | placement | naming | layering
                                       # | companion | size | llm
        severity: error                # error | warning | notice (default warning)
        message: breakpoint() left in the code
        rationale: It stops the program wherever it runs.   # why the rule exists
        hint: Remove it.               # how to fix a finding
        paths: ["*.py"]                # globs the rule applies to (default: every file)
        ignore: ["tests/"]             # globs it never applies to
        regex: '\\bbreakpoint\\(\\)'     # kind-specific fields, see each model below

Globs follow `agents.vision.globs`. Every field is checked when the file is loaded; a
mistake is reported with the file and the line (`PolicyError`). The rule kinds and
their fields are the `*Rule` models below; `policies/README.md` documents the same
with examples.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.vision.globs import matches_any, validate_glob
from agents.vision.secrets.scan import DETECTORS, ENV_FILE_DETECTOR
from agents.vision.yamlsource import SourceError, YamlDocument

# The shipped packs: `policies/` at the repository's root, which this link names so that an
# installed package (pip, pre-commit, the GitHub Action) carries them as its own data.
BUILTIN_DIR = Path(__file__).parent / "packs"

Severity = Literal["error", "warning", "notice"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "notice")

# Language names a `pattern` rule may filter on, by file extension.
LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "javascript": (".js", ".jsx", ".mjs", ".cjs"),
    "typescript": (".ts", ".tsx", ".mts", ".cts"),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "kotlin": (".kt", ".kts"),
    "ruby": (".rb",),
    "php": (".php",),
    "shell": (".sh", ".bash", ".zsh"),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx"),
    "csharp": (".cs",),
    "swift": (".swift",),
    "scala": (".scala",),
    "yaml": (".yml", ".yaml"),
    "json": (".json",),
    "toml": (".toml",),
    "markdown": (".md", ".markdown"),
    "sql": (".sql",),
    "html": (".html", ".htm"),
    "css": (".css", ".scss", ".sass", ".less"),
}


class PolicyError(SourceError):
    """A policy pack that cannot be used; `str()` names the file and line of each problem."""


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


Regex = Annotated[str, Field(min_length=1)]
Glob = Annotated[str, AfterValidator(validate_glob)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)]


class RuleBase(BaseModel):
    """Fields every rule has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    severity: Severity = "warning"
    message: str = Field(min_length=1)
    rationale: str = ""
    hint: str = ""
    paths: list[Glob] = Field(default_factory=lambda: ["**"])
    ignore: list[Glob] = Field(default_factory=list)

    def applies_to(self, path: str) -> bool:
        return self._everywhere or (matches_any(path, self.paths) and not matches_any(path, self.ignore))

    @cached_property
    def _everywhere(self) -> bool:
        """The default `paths` and no `ignore`: every file, without matching globs."""
        return self.paths == ["**"] and not self.ignore

    @cached_property
    def digest(self) -> str:
        """A hash of the rule's definition: its version, for caches keyed on (rule, input)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PatternRule(RuleBase):
    """`regex` searched in each added line; `unless` (if set) on the same line cancels a match.

    `languages` limits the rule to files of those languages (by extension, see
    LANGUAGES). Lines are matched one at a time: `^` and `$` are the line's ends.
    Adjacent matching lines become one finding over a range. `unless_file` (if set)
    is searched in the whole file at the head commit (`\\A` is its start, `^` each
    line's) when the rule would report it, and a match spares the file: a script
    (`\\A#!`), a command-line entry point.
    """

    kind: Literal["pattern"]
    regex: Regex
    unless: str | None = None
    unless_file: str | None = None
    languages: list[str] = Field(default_factory=list)

    @field_validator("regex", "unless", "unless_file")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return value if value is None else _regex(value)

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: list[str]) -> list[str]:
        unknown = [name for name in languages if name not in LANGUAGES]
        if unknown:
            raise ValueError(f"unknown language {', '.join(unknown)}; known: {', '.join(sorted(LANGUAGES))}")
        return languages

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)

    @cached_property
    def compiled_multiline(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.MULTILINE)

    @cached_property
    def compiled_unless(self) -> re.Pattern[str] | None:
        return re.compile(self.unless) if self.unless else None

    @cached_property
    def compiled_unless_file(self) -> re.Pattern[str] | None:
        return re.compile(self.unless_file, re.MULTILINE) if self.unless_file else None

    @cached_property
    def extensions(self) -> tuple[str, ...]:
        return tuple(ext for name in self.languages for ext in LANGUAGES[name])

    def applies_to(self, path: str) -> bool:
        return super().applies_to(path) and (not self.extensions or path.lower().endswith(self.extensions))


class SecretRule(RuleBase):
    """Credentials in what a change adds, found by built-in `detectors`.

    - a vendor's name (`github`, `slack`, `stripe`, `aws`… — `agents.vision.secrets.tokens`
      lists them): its credential formats, by prefix, length, alphabet and checksum,
      whatever the value is assigned to;
    - `private_key`: PEM/OpenSSH private key blocks with a key body (a header alone is
      not a key); `gcp_service_account`: such a key in a Google Cloud service-account
      JSON file;
    - `curl`: `-u user:password` and authorization headers in curl command lines;
      `url_credentials`: `scheme://user:password@host`;
    - `generic`: a value of at least `min_length` characters and Shannon entropy of at
      least `min_entropy` bits per character, assigned to a name ending in password,
      secret, token, api_key… (unquoted values too in .env, YAML, INI, TOML, Makefiles,
      shell scripts and Dockerfiles). Obvious placeholders (`changeme`, `${VAR}`,
      `<token>`, `xxxx`, values with "example", "dummy", "test"…) are not reported;
    - `env_file`: a committed environment file (a file the rule's `paths` select,
      added or renamed by the change).

    A finding never contains the secret: messages show a redacted form (`ghp_****`).
    In a test fixture or docs example (`agents.vision.secrets.context`, and the
    repository config's `fixtures`) findings are reported at notice.
    """

    kind: Literal["secret"]
    detectors: list[str] = Field(default_factory=lambda: [d for d in DETECTORS if d != ENV_FILE_DETECTOR], min_length=1)
    min_entropy: float = Field(3.0, ge=0, le=8)
    min_length: int = Field(8, ge=1)

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, detectors: list[str]) -> list[str]:
        unknown = [name for name in detectors if name not in DETECTORS]
        if unknown:
            raise ValueError(f"unknown detector {', '.join(unknown)}; known: {', '.join(sorted(DETECTORS))}")
        return detectors


class PlacementRule(RuleBase):
    """Where files may live. Checked on files the change adds or renames.

    - `allowed_top_level`: names (globs) allowed at the repository root; a new entry
      outside them is reported once;
    - `under`: files matching `paths` must live under one of these globs
      (`under: []` means such files must not be committed at all).
    """

    kind: Literal["placement"]
    allowed_top_level: list[Glob] | None = None
    under: list[Glob] | None = None

    @model_validator(mode="after")
    def _one_constraint(self) -> PlacementRule:
        if self.allowed_top_level is None and self.under is None:
            raise ValueError("a placement rule needs `allowed_top_level` or `under`")
        return self


class NamingRule(RuleBase):
    """File names (the last path segment) of new or renamed files matching `paths` must
    fully match `regex`."""

    kind: Literal["naming"]
    regex: Regex

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        return _regex(value)

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)


class LayeringRule(RuleBase):
    """Python import rules: modules of `packages` must not import `forbidden` ones.

    Read from the syntax tree of each changed `.py` file at the head commit; relative
    imports are resolved. Only import statements on added lines are reported (a
    dependency the change introduces). `root` is the directory the packages live in
    (`src` for a src layout; empty for the repository root). An empty `packages` list
    means every module the rule's `paths` select. With `exempt_pytest_plugins`, a
    module that is a pytest plugin (see `agents.vision.checks.plugins`) is not checked.
    """

    kind: Literal["layering"]
    packages: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(min_length=1)
    root: str = ""
    exempt_pytest_plugins: bool = False

    @field_validator("packages", "forbidden")
    @classmethod
    def _dotted(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
                raise ValueError(f"{name!r} is not a dotted module name")
        return names


class CompanionRule(RuleBase):
    """Changing a file matching `paths` requires changing a file matching `requires`
    in the same change (models → a migration, code → tests).

    `when: schema` counts only changes to the schema a Python file declares: its
    classes' fields (class-level assignments and annotations, bases, nested classes
    such as `Meta`) and module-level `Table(...)`; a method body, a docstring or a
    comment is not a schema change. Other files count whenever they change.
    """

    kind: Literal["companion"]
    requires: list[Glob] = Field(min_length=1)
    when: Literal["changed", "schema"] = "changed"


class SizeRule(RuleBase):
    """Size limits. Per file (files matching `paths`): `max_file_bytes` at the head
    commit, `max_added_lines`. Per change: `max_changed_lines` (added + removed) and
    `max_changed_files`."""

    kind: Literal["size"]
    max_file_bytes: int | None = Field(None, gt=0)
    max_added_lines: int | None = Field(None, gt=0)
    max_changed_lines: int | None = Field(None, gt=0)
    max_changed_files: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_limit(self) -> SizeRule:
        limits = (self.max_file_bytes, self.max_added_lines, self.max_changed_lines, self.max_changed_files)
        if all(limit is None for limit in limits):
            raise ValueError(
                "a size rule needs one of max_file_bytes, max_added_lines, max_changed_lines, max_changed_files"
            )
        return self


class LlmRule(RuleBase):
    """A rule in plain language (`instruction`), judged by Claude on each hunk in scope.

    The scope is `paths`/`ignore`. Only hunks that no deterministic rule settled reach
    the model: a hunk where a deterministic finding already sits is not sent, and
    when `trigger` is set, a hunk none of whose added lines match it is settled as
    not applicable without a call. Without the LLM rung (no key, budget spent) these
    rules are reported as skipped, never as passed.
    """

    kind: Literal["llm"]
    instruction: str = Field(min_length=1)
    trigger: str | None = None

    @field_validator("trigger")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return value if value is None else _regex(value)

    @cached_property
    def compiled_trigger(self) -> re.Pattern[str] | None:
        return re.compile(self.trigger) if self.trigger else None


Rule = Annotated[
    PatternRule | SecretRule | PlacementRule | NamingRule | LayeringRule | CompanionRule | SizeRule | LlmRule,
    Field(discriminator="kind"),
]
RULE_KINDS = ("pattern", "secret", "placement", "naming", "layering", "companion", "size", "llm")


class Pack(BaseModel):
    """A named set of rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    rules: list[Rule] = Field(min_length=1)


def parse_pack(text: str | bytes, source: str) -> Pack:
    """Validate one pack; raises PolicyError naming `source` and the line."""
    document = YamlDocument(text, source, PolicyError)
    pack = document.validate(Pack)
    seen: dict[str, int] = {}
    for index, rule in enumerate(pack.rules):
        if rule.id in seen:
            raise document.fail(("rules", index, "id"), f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])")
        seen[rule.id] = index
    return pack


def load_pack(path: Path) -> Pack:
    return parse_pack(path.read_bytes(), str(path))


def builtin_pack_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yml"))


def builtin_pack(name: str) -> Pack:
    """A pack shipped under `policies/`, by name."""
    path = BUILTIN_DIR / f"{name}.yml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name) or not path.is_file():
        raise KeyError(name)
    return load_pack(path)
