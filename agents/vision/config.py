"""The repository config, `.github/waooaw.yml`: what WowVision applies, and which agents are hired.

    extends: my-org/.github          # an org-wide config to start from (fetched by the edge)
    packs: [secrets, hygiene, structure, architecture, .github/waooaw/team.yml]
    rules:
      hygiene-print: off             # disable a rule
      size-pr-lines: notice          # change its severity
      secret-generic: {severity: error}
      hygiene-console-log: {ignore: ["scripts/**"]}   # files this one rule does not look at
    ignore: ["vendor/", "*.min.js"]  # files no rule looks at
    fixtures: ["spec/support/"]      # test data: a credential there is reported at notice
    review: COMMENT                  # or REQUEST_CHANGES when an error-level finding exists
    max_inline_comments: 25          # the rest go to the summary
    budget_usd: 0.5                  # this repository's LLM spend per UTC day: only lowers the operator's
    drafts: false                    # review draft pull requests too
    agents:                          # which agents work here (the Hiring agent applies it: agents/hiring.py)
      enable: [tech-support]         # agents that are off until hired (every spec agent)
      disable: [wowvision]           # agents that are on unless told otherwise
      budgets: {tech-support: 0.1}   # an agent's LLM budget on this repository, USD per UTC day

It is read from the base commit of a change, never from the change itself, so a
change cannot relax the rules applied to it. A missing file means the defaults; an
invalid one raises ConfigError naming the line, and must not fall back to the
defaults. A pack is a built-in name (`policies/<name>.yml`) or a path to a YAML file
in the repository (read from the same base commit).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agents.vision.policy import Glob, Pack, Rule, Severity, builtin_pack, builtin_pack_names, parse_pack
from agents.vision.yamlsource import Problem, SourceError, YamlDocument

CONFIG_PATH = ".github/waooaw.yml"
DEFAULT_PACKS = ("secrets", "hygiene", "structure", "architecture")
_PACK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


class ConfigError(SourceError):
    """An invalid repository config; `str()` names the file and line of each problem."""


class RuleOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity | None = None
    disabled: bool = False
    ignore: list[Glob] = Field(default_factory=list)  # added to the rule's own `ignore`

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """`off`/`false` disables; a severity name sets the severity; a mapping is the full form."""
        if value is False or value in ("off", "disabled"):
            return {"disabled": True}
        if value is True or value == "on":
            return {}
        if isinstance(value, str):
            return {"severity": value}
        return value


AgentName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


class AgentsConfig(BaseModel):
    """`agents:`: the hired identities this repository asks for (read from its default branch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enable: list[AgentName] = Field(default_factory=list)
    disable: list[AgentName] = Field(default_factory=list)
    budgets: dict[AgentName, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @field_validator("enable", "disable", "budgets", mode="before")
    @classmethod
    def _nothing_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """`enable:` with nothing under it, as people leave a list they emptied."""
        if value is None:
            return {} if info.field_name == "budgets" else []
        return value

    @model_validator(mode="after")
    def _each_once(self) -> AgentsConfig:
        both = sorted(set(self.enable) & set(self.disable))
        if both:
            raise ValueError(f"{', '.join(both)}: listed under both enable and disable")
        return self


class RepoConfig(BaseModel):
    """`.github/waooaw.yml`, validated. `RepoConfig()` is the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extends: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    packs: list[str] = Field(default_factory=lambda: list(DEFAULT_PACKS))
    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    ignore: list[Glob] = Field(default_factory=list)
    # Paths of test data beyond the usual ones (tests/, fixtures/, testdata/, examples/…):
    # a real-format credential there is reported at notice, as a test key to confirm.
    fixtures: list[Glob] = Field(default_factory=list)
    review: Literal["COMMENT", "REQUEST_CHANGES"] = "COMMENT"
    max_inline_comments: int = Field(25, ge=0, le=1000)
    # Lowers the operator's daily limit of a repository (WAOOAW_LLM_REPO_DAILY_BUDGET_USD), never raises it.
    budget_usd: float | None = Field(None, ge=0)
    drafts: bool = False
    agents: AgentsConfig = Field(default_factory=AgentsConfig)

    _document: YamlDocument | None = PrivateAttr(None)

    @field_validator("rules", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: RuleOverride.coerce(override) for key, override in value.items()}
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _no_agents_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("packs")
    @classmethod
    def _pack_refs(cls, packs: list[str]) -> list[str]:
        for pack in packs:
            if not (_PACK_NAME.fullmatch(pack) or pack.endswith((".yml", ".yaml"))):
                raise ValueError(f"{pack!r} is neither a pack name nor a path to a .yml file")
        return packs

    @property
    def source(self) -> str:
        return self._document.source if self._document is not None else CONFIG_PATH

    def fail(self, loc: Sequence[str | int], message: str) -> ConfigError:
        if self._document is not None:
            error = self._document.fail(loc, message)
            assert isinstance(error, ConfigError)
            return error
        return ConfigError(self.source, [Problem(None, "", message)])

    def apply(self, rules: Sequence[Rule]) -> list[Rule]:
        """The rules with this config's overrides: disabled ones dropped, severities changed, paths ignored."""
        out: list[Rule] = []
        for rule in rules:
            override = self.rules.get(rule.id)
            if override is None:
                out.append(rule)
            elif not override.disabled:
                if override.severity:
                    rule = rule.model_copy(update={"severity": override.severity})
                if override.ignore:  # validated anew: the rule caches what its paths match
                    rule = type(rule).model_validate({**rule.model_dump(), "ignore": [*rule.ignore, *override.ignore]})
                out.append(rule)
        return out


def parse_config(text: str | bytes | None, source: str = CONFIG_PATH) -> RepoConfig:
    """Validate a config file's text; None (no file) gives the defaults."""
    if text is None:
        return RepoConfig()
    document = YamlDocument(text, source, ConfigError)
    config = document.validate(RepoConfig, empty={})
    config._document = document
    return config


def extend(org: RepoConfig, repo: RepoConfig) -> RepoConfig:
    """`repo` on top of the org-wide config it `extends`: what the repo sets wins, rule
    overrides merge (the repo's over the org's), ignore and fixtures globs add up, and a
    budget only goes down (the lower of the two: a repository cannot raise its org's)."""
    merged = org.model_dump(exclude={"extends"})
    for key in repo.model_fields_set - {"extends"}:
        value = getattr(repo, key)
        if key == "rules":
            merged["rules"] = {**merged["rules"], **{rule: o.model_dump() for rule, o in value.items()}}
        elif key in ("ignore", "fixtures"):
            merged[key] = [*merged[key], *value]
        elif key == "budget_usd" and merged[key] is not None and value is not None:
            merged[key] = min(merged[key], value)
        else:
            merged[key] = value
    config = RepoConfig.model_validate(merged)
    config._document = repo._document  # problems found later are reported against the repo's file
    return config


ReadFile = Callable[[str], bytes | None]


def resolve_packs(config: RepoConfig, read_file: ReadFile | None = None) -> list[Pack]:
    """The packs `config` applies, loaded and checked against its overrides.

    Built-in names load from `policies/`; paths load through `read_file` (the base
    commit's files). Raises ConfigError (an unknown pack, a rule id two packs define,
    an override of a rule no pack has) or PolicyError (a repository pack is invalid).
    """
    packs: list[Pack] = []
    defined: dict[str, str] = {}
    for index, ref in enumerate(config.packs):
        pack = _load(config, index, ref, read_file)
        for rule in pack.rules:
            if rule.id in defined:
                message = f"pack {pack.name!r} defines rule {rule.id!r}, which {defined[rule.id]!r} defines too"
                raise config.fail(("packs", index), message)
            defined[rule.id] = pack.name
        packs.append(pack)
    for rule_id in config.rules:
        if rule_id not in defined:
            raise config.fail(("rules", rule_id), f"no applied pack has a rule {rule_id!r}")
    return packs


def _load(config: RepoConfig, index: int, ref: str, read_file: ReadFile | None) -> Pack:
    if not ref.endswith((".yml", ".yaml")):
        try:
            return builtin_pack(ref)
        except KeyError:
            known = ", ".join(builtin_pack_names())
            raise config.fail(("packs", index), f"no built-in pack {ref!r}; known: {known}") from None
    text = read_file(ref.lstrip("/")) if read_file is not None else None
    if text is None:
        raise config.fail(("packs", index), f"pack file {ref!r} does not exist in the base commit")
    return parse_pack(text, ref)
