"""WowVision Prime: reviews a change against policy packs, deterministic rules first.

    diff = parse_diff(git_diff_bytes)                   # or from_github_files(entries)
    config = parse_config(base_config_bytes)            # None → defaults
    packs = resolve_packs(config, read_base_file)
    result = review(diff, read_head_file, config, packs)
    result = await complete(result, ladder)             # optional: the LLM rung

Modules: `diff` (the diff model and review-comment anchors), `policy` (packs and
rules), `config` (`.github/waooaw.yml`), `checks` (one function per rule kind),
`secrets` (the secret detectors),
`engine` (review and the LLM seam), `render` (text, Markdown, JSON).
"""

from agents.vision.config import CONFIG_PATH, ConfigError, RepoConfig, parse_config, resolve_packs
from agents.vision.diff import Anchor, Diff, FileDiff, FileStatus, Hunk, anchor, from_github_files, parse_diff
from agents.vision.engine import LlmItem, LlmOutcome, LlmRung, ReviewResult, complete, inline_anchor, review
from agents.vision.findings import Finding, Skipped, Summary
from agents.vision.policy import Pack, PolicyError, builtin_pack, parse_pack

__all__ = [
    "CONFIG_PATH",
    "Anchor",
    "ConfigError",
    "Diff",
    "FileDiff",
    "FileStatus",
    "Finding",
    "Hunk",
    "LlmItem",
    "LlmOutcome",
    "LlmRung",
    "Pack",
    "PolicyError",
    "RepoConfig",
    "ReviewResult",
    "Skipped",
    "Summary",
    "anchor",
    "builtin_pack",
    "complete",
    "from_github_files",
    "inline_anchor",
    "parse_config",
    "parse_diff",
    "parse_pack",
    "resolve_packs",
    "review",
]
