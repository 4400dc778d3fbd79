"""WowVision Prime: reviews pull requests and default-branch pushes against the repository's policies.

A pull request gets, per head SHA, one check run "WowVision", one review with inline
comments for the findings that are new at that SHA, and one summary comment per PR,
edited in place (fixed findings struck through). In REQUEST_CHANGES mode, its reviews
that requested changes are dismissed once no error-level finding is left. The Re-run
button (of the check run or of the whole suite) reviews again. The config is read from
the PR's base commit, so a PR cannot relax the rules applied to itself. A push to the
default branch keeps one issue per rule with findings there, updated as they change
and closed when none is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from agents import markdown as md
from agents.base import AgentEnv, CommandHelp, WowAgent
from agents.commands import WRITE_ROLES, SlashCommand, find_command, may_act, refusal
from agents.decisions import DecisionLadder
from agents.events import Event
from agents.ledger import Entry, LedgerOwner, record_entries
from agents.messages import EVENT as MESSAGE_EVENT
from agents.messages import Received
from agents.outputs import (
    Annotation,
    CheckRun,
    Comment,
    InlineComment,
    IssueReport,
    Output,
    Reaction,
    Review,
    ReviewDismissal,
)
from agents.ports import RepoReader
from agents.reputation.outcomes import record_outcomes
from agents.store.db import Store
from agents.store.tables import AuditEntry
from agents.vision import signoff
from agents.vision.config import CONFIG_PATH, RepoConfig, extend, parse_config, resolve_packs
from agents.vision.diff import Diff, from_github_files, parse_diff
from agents.vision.engine import LlmOutcome, ReviewResult, complete, inline_anchor, review
from agents.vision.findings import Finding, Skipped
from agents.vision.llm_rung import LadderRung
from agents.vision.outcomes import fixed, ignored
from agents.vision.policy import Pack
from agents.vision.render import counts, location, render_review_markdown
from agents.vision.yamlsource import SourceError

log = structlog.get_logger(__name__)

CHECK_NAME = "WowVision"
VISION_VERBS = ("recheck", "pause", "resume", "explain", "ignore")
ACTING = frozenset({"recheck", "pause", "resume", "ignore"})
LEVEL: dict[str, Literal["failure", "warning", "notice"]] = {
    "error": "failure",
    "warning": "warning",
    "notice": "notice",
}
NULL_SHA = "0" * 40


class WowVisionPrime(WowAgent):
    name = "wowvision"
    coe = "engineering"  # its RACI matrix: agents/specs/engineering/raci.yaml
    description = "Guards architecture and conventions: reviews pull requests and pushes against policies"
    wakes_on = (
        "pull_request.opened",
        "pull_request.synchronize",
        "pull_request.reopened",
        "pull_request.ready_for_review",
        "push",
        "check_run.rerequested",
        "check_suite.rerequested",
        "issue_comment.created",
        signoff.ASKED,  # the engineering coordinator asks its Accountable to sign a fix off
    )
    commands = (
        CommandHelp("/wowvision recheck", "review this pull request again", needs_write=True),
        CommandHelp("/wowvision explain RULE", "what a rule checks and why"),
        CommandHelp("/wowvision ignore RULE [reason]", "stop applying a rule on this repository", needs_write=True),
        CommandHelp("/wowvision pause", "stop reviewing this pull request", needs_write=True),
        CommandHelp("/wowvision resume", "review this pull request again on every push", needs_write=True),
    )

    def __init__(self, env: AgentEnv) -> None:
        super().__init__(env)
        self._suite_peers: list[tuple[WowVisionPrime, Event]] = []  # other PRs of a re-run suite

    def should_wake(self, event: Event) -> bool:
        if not super().should_wake(event):
            return False
        if event.name == "push":
            return _default_branch_push(event.payload)
        if event.name == "check_run":
            return (event.payload.get("check_run") or {}).get("name") == CHECK_NAME
        if event.name == "check_suite":
            # GitHub sends `rerequested` only to the App whose suite it is: the suite is ours.
            return bool(_suite_pulls(event.payload))
        if event.name == "issue_comment":
            return _command(event) is not None
        if event.name == MESSAGE_EVENT:
            return signoff.asked_pull(Received.of(event)) is not None
        return True

    def context_scope(self, event: Event) -> str:
        if event.name == "push":
            return "default-branch"
        command = _command(event) if event.name == "issue_comment" else None
        if command is not None and command.verb in ("ignore", "explain"):
            return "repo"
        if event.name == MESSAGE_EVENT:
            return f"pr-{signoff.asked_pull(Received.of(event))}"  # the pull request to sign off
        return f"pr-{_pr_number(event)}"

    async def execute(self, event: Event) -> list[Output]:
        received = Received.of(event)
        if received is not None:
            return signoff.verdict(received, self.context)
        reader = self.env.reader_for(event)
        if event.name == "issue_comment":
            # Answered without a reader too: a dry run shows the refusal nobody's permission can lift.
            return await self._command(event, reader)
        if reader is None or event.repo is None:
            log.info(
                "wowvision.no_github", delivery=event.delivery_id, reason="no GitHub credentials to read the change"
            )
            return []
        if event.name == "push":
            return await self._push(event, reader)
        if event.name == "check_suite":
            return await self._rerun_suite(event, reader)
        number = _pr_number(event)
        if number is None:
            return []
        pull = event.payload.get("pull_request") if event.name == "pull_request" else None
        pull = pull or await reader.pull_request(event.repo, number)
        forced = event.name == "check_run"  # the Re-run button asks for a review whatever the state
        return await self._review_pull(event, reader, pull, forced=forced)

    # ------------------------------------------------------------------ pull requests

    async def _rerun_suite(self, event: Event, reader: RepoReader) -> list[Output]:
        """The Re-run button of the whole suite: each open PR still at the suite's head SHA is reviewed again.

        The suite's first PR is this run's context; every other PR has its own, read now
        and saved with this run's (see save_context), after the outputs are published.
        """
        repo, head_sha = event.repo or "", event.payload["check_suite"]["head_sha"]
        outputs: list[Output] = []
        for index, listed in enumerate(_suite_pulls(event.payload)):
            one = replace(event, payload=_naming_one_pull(event.payload, listed))
            pull = await reader.pull_request(repo, int(listed["number"]))
            if pull.get("state") != "open" or pull["head"]["sha"] != head_sha:
                log.info("wowvision.rerun_skipped", repo=repo, pull=listed["number"], reason="closed or moved on")
                continue
            agent = self
            if index > 0:
                agent = WowVisionPrime(self.env)
                await agent.wake_up(one)
                self._suite_peers.append((agent, one))
            outputs += await agent._review_pull(one, reader, pull, forced=True)
        return outputs

    async def save_context(self, event: Event) -> None:
        await super().save_context(event)
        for agent, one in self._suite_peers:
            await agent.save_context(one)

    async def _review_pull(
        self, event: Event, reader: RepoReader, pull: dict[str, Any], *, forced: bool
    ) -> list[Output]:
        repo, number = event.repo or "", int(pull["number"])
        head_sha, base_sha = pull["head"]["sha"], pull["base"]["sha"]
        if self.context.get("paused") and not forced:
            return []
        loaded = await load_rules(reader, repo, base_sha)
        if isinstance(loaded, SourceError):
            return _invalid_config(repo, number, head_sha, loaded)
        config, packs = loaded
        if pull.get("draft") and not config.drafts and not forced:
            return []
        diff = await _pull_diff(reader, repo, pull)
        commits = (base_sha, head_sha)
        suppressed = await self._suppressed(event)
        result = await _review(diff, reader, repo, commits, config, packs, suppressed)
        author = (pull.get("user") or {}).get("login")
        if result.pending:
            # Spending is for PRs whose author has write access: a stranger's PR cannot run up the bill.
            if author and await reader.permission(repo, author) in WRITE_ROLES:
                result = await complete(result, LadderRung(self._ladder(event, config)))
            else:
                reason = "LLM rung: the author has no write access, so no model is paid for this PR"
                result = result.settle(
                    LlmOutcome(
                        skipped=tuple(Skipped("llm", reason, i.rule.id, i.path, i.start, i.end) for i in result.pending)
                    )
                )
        await asyncio.to_thread(_record_findings, self.env.store, event, result)
        before = dict(self.context.get("findings", {}))
        outputs = self._pull_outputs(repo, number, head_sha, diff, config, result)
        gone = fixed(
            event, f"pr-{number}", before, self.context["findings"], suppressed, sha=head_sha, url=pull.get("html_url")
        )
        await asyncio.to_thread(record_outcomes, self.env.store, gone)
        return outputs

    def _pull_outputs(
        self, repo: str, number: int, head_sha: str, diff: Diff, config: RepoConfig, result: ReviewResult
    ) -> list[Output]:
        previous: dict[str, dict[str, Any]] = self.context.get("findings", {})
        posted: set[str] = set(self.context.get("posted", []))
        current = {f.fingerprint: _remember(f) for f in result.findings}
        fixed = [item for fp, item in previous.items() if fp not in current]
        outputs: list[Output] = [_check_run(repo, head_sha, result)]
        inline: list[InlineComment] = []
        for finding in result.findings:
            spot = inline_anchor(diff, finding)
            if finding.fingerprint in posted or spot is None or len(inline) >= config.max_inline_comments:
                continue
            inline.append(InlineComment(spot.path, spot.line, _inline_text(finding), start_line=spot.start_line))
            posted.add(finding.fingerprint)
        review_key = f"pr-{number}"
        if inline:
            event: Literal["REQUEST_CHANGES", "COMMENT"] = (
                "REQUEST_CHANGES" if config.review == "REQUEST_CHANGES" and result.failed else "COMMENT"
            )
            body = (
                f"WowVision: {len(inline)} new finding{'s' if len(inline) != 1 else ''} at {head_sha[:7]}; "
                "the summary comment has them all."
            )
            outputs.append(Review(repo, number, head_sha, body, key=review_key, event=event, comments=tuple(inline)))
        if config.review == "REQUEST_CHANGES" and not result.failed:
            message = f"WowVision: no error-level finding is left at {head_sha[:7]}."
            outputs.append(ReviewDismissal(repo, number, review_key, message))
        outputs.append(Comment(repo, number, _summary(result, fixed, head_sha), key=f"summary:{number}"))
        self.context.update({"head_sha": head_sha, "findings": current, "posted": sorted(posted)})
        return outputs

    def _ladder(self, event: Event, config: RepoConfig) -> DecisionLadder:
        return self.ladder(event, self.env.budgets.lowered(repo_daily_usd=config.budget_usd))  # the config only lowers

    async def _suppressed(self, event: Event) -> set[str]:
        repo_context = await self.read_context(event, "repo")
        return set(repo_context.get("suppressions", {}))

    # ------------------------------------------------------------------ the default branch

    async def _push(self, event: Event, reader: RepoReader) -> list[Output]:
        repo, before, after = event.repo or "", event.payload["before"], event.payload["after"]
        if before == NULL_SHA:
            return []  # a new branch: nothing to compare with
        loaded = await load_rules(reader, repo, before)
        if isinstance(loaded, SourceError):
            title = "WowVision: .github/waooaw.yml is invalid"
            return [IssueReport(repo, title, _config_error_text(loaded), key="config", labels=("wowvision",))]
        config, packs = loaded
        diff = parse_diff(await reader.compare_diff(repo, before, after))
        suppressed = await self._suppressed(event)
        result = await _review(diff, reader, repo, (before, after), config, packs, suppressed)
        await asyncio.to_thread(_record_findings, self.env.store, event, result)
        touched = {file.path for file in diff.files}
        # Copies: the context as loaded is what save_context compares with, and must stay as it was.
        open_by_rule = {rule: dict(items) for rule, items in self.context.get("open", {}).items()}
        was_open = {fp: item for items in open_by_rule.values() for fp, item in items.items()}
        changed_rules: set[str] = set()
        for rule, items in open_by_rule.items():  # findings in touched files are judged again
            kept = {fp: item for fp, item in items.items() if item["path"] not in touched}
            if kept != items:
                changed_rules.add(rule)
            open_by_rule[rule] = kept
        for finding in result.findings:
            items = open_by_rule.setdefault(finding.rule, {})
            if finding.fingerprint not in items:
                changed_rules.add(finding.rule)
            items[finding.fingerprint] = _remember(finding)
        outputs: list[Output] = []
        for rule in sorted(changed_rules):
            items = open_by_rule[rule]
            state: Literal["open", "closed"] = "open" if items else "closed"
            body = (
                _rule_issue(rule, items, after)
                if items
                else f"No finding of {md.code(rule)} is left on the default branch as of {after[:7]}. Closing."
            )
            outputs.append(
                IssueReport(
                    repo,
                    f"WowVision: {rule} on the default branch",
                    body,
                    key=f"rule:{rule}",
                    labels=("wowvision",),
                    state=state,
                )
            )
        self.context["open"] = {rule: items for rule, items in open_by_rule.items() if items}
        still_open = {fp: item for items in open_by_rule.values() for fp, item in items.items()}
        gone = fixed(
            event, "default-branch", was_open, still_open, suppressed, sha=after, url=event.payload.get("compare")
        )
        await asyncio.to_thread(record_outcomes, self.env.store, gone)
        return outputs

    # ------------------------------------------------------------------ commands

    async def _command(self, event: Event, reader: RepoReader | None) -> list[Output]:
        command = _command(event)
        assert command is not None and event.repo is not None and event.issue_number is not None
        comment_id = event.payload["comment"]["id"]
        outputs: list[Output] = [Reaction(event.repo, "eyes", comment_id=comment_id)]

        def reply(text: str) -> list[Output]:
            return [*outputs, Comment(event.repo or "", event.issue_number or 0, text, key=f"command:{comment_id}")]

        if command.verb in ACTING and not await may_act(reader, event):
            return reply(refusal(command, event.sender_login))
        is_pull = bool((event.payload.get("issue") or {}).get("pull_request"))
        if command.verb in ("recheck", "pause", "resume") and not is_pull:
            return reply(f"`/wowvision {command.verb}` works on pull requests; this is an issue.")
        if command.verb == "recheck":
            assert reader is not None  # may_act is False without one
            pull = await reader.pull_request(event.repo, event.issue_number)
            return outputs + await self._review_pull(event, reader, pull, forced=True)
        if command.verb in ("pause", "resume"):
            self.context["paused"] = command.verb == "pause"
            text = (
                "WowVision is paused on this pull request: no reviews until `/wowvision resume`."
                if command.verb == "pause"
                else "WowVision reviews this pull request again on every push (`/wowvision recheck` to review now)."
            )
            return reply(text)
        rule_id = command.args[1] if len(command.args) > 1 else None
        if rule_id is None:
            return reply(f"Which rule? `/wowvision {command.verb} RULE` — the check run and the summary name them.")
        packs = await _default_branch_packs(reader, event)
        rule = next((r for pack in packs for r in pack.rules if r.id == rule_id), None)
        if rule is None:
            return reply(f"No applied rule is called {md.code(rule_id)} on this repository.")
        if command.verb == "explain":
            lines = [f"**{md.code(rule.id)}** ({rule.kind}, {rule.severity}) — {md.prose(rule.message)}"]
            lines += [f"\n**Why:** {md.text(rule.rationale)}"] if rule.rationale else []
            lines += [f"\n**How to fix:** {md.prose(rule.hint)}"] if rule.hint else []
            return reply("\n".join(lines))
        reason = " ".join(command.args[2:]) or "no reason given"
        suppressions = dict(self.context.get("suppressions", {}))
        suppressions[rule.id] = {
            "by": event.sender_login,
            "reason": reason,
            "at": datetime.now(UTC).isoformat(),
        }
        self.context["suppressions"] = suppressions
        await asyncio.to_thread(_audit_ignore, self.env.store, event, rule.id, reason)
        await asyncio.to_thread(record_outcomes, self.env.store, [ignored(event, rule.id, reason)])
        return reply(
            f"{md.code(rule.id)} is no longer applied on this repository "
            f"(by @{event.sender_login}: {md.text(reason)}). It shows in `/waooaw status`."
        )


# ---------------------------------------------------------------------- helpers


def _command(event: Event) -> SlashCommand | None:
    return find_command(event.comment_body, "wowvision", VISION_VERBS)


def _pr_number(event: Event) -> int | None:
    if event.name in ("check_run", "check_suite"):
        pulls = (event.payload.get(event.name) or {}).get("pull_requests") or []
        return pulls[0]["number"] if pulls else None
    return event.issue_number


def _suite_pulls(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The PRs whose head is the suite's (none for a fork's branch: GitHub leaves them out)."""
    return (payload.get("check_suite") or {}).get("pull_requests") or []


def _naming_one_pull(payload: dict[str, Any], pull: dict[str, Any]) -> dict[str, Any]:
    """The check_suite payload as if `pull` were its only PR: one PR's context and review."""
    return {**payload, "check_suite": {**payload["check_suite"], "pull_requests": [pull]}}


def _default_branch_push(payload: dict[str, Any]) -> bool:
    branch = (payload.get("repository") or {}).get("default_branch")
    return bool(branch) and payload.get("ref") == f"refs/heads/{branch}" and not payload.get("deleted")


async def load_rules(reader: RepoReader, repo: str, ref: str) -> tuple[RepoConfig, list[Pack]] | SourceError:
    """The config and packs at `ref` (the base commit): what the change is judged by."""
    text = await reader.file_at(repo, ref, CONFIG_PATH)
    try:
        config = parse_config(text)
        if config.extends:
            # The org-wide file, from the default branch of the org's `.github` repository.
            org_text = await reader.file_at(config.extends, "HEAD", CONFIG_PATH)
            if org_text is None:
                raise config.fail(("extends",), f"{config.extends} has no {CONFIG_PATH} (or the App cannot read it)")
            config = extend(parse_config(org_text, f"{config.extends}:{CONFIG_PATH}"), config)
        pack_files = [p for p in config.packs if p.endswith((".yml", ".yaml"))]
        contents = dict(
            zip(
                pack_files,
                await asyncio.gather(*(reader.file_at(repo, ref, p.lstrip("/")) for p in pack_files)),
                strict=True,
            )
        )
        return config, resolve_packs(config, lambda path: contents.get(path) or contents.get("/" + path))
    except SourceError as error:
        return error


async def _pull_diff(reader: RepoReader, repo: str, pull: dict[str, Any]) -> Diff:
    """The PR's diff; when GitHub will not render one (too large), the files API's patches:
    what is reachable is reviewed, and what GitHub leaves out is reported as skipped."""
    try:
        return parse_diff(await reader.pull_request_diff(repo, int(pull["number"])))
    except Exception as exc:  # noqa: BLE001 - GitHub answers 406/422 for diffs over its limits
        log.info("wowvision.diff_unavailable", repo=repo, pull=pull["number"], error=repr(exc))
        files = await reader.pull_request_files(repo, int(pull["number"]))
        return from_github_files(files, total_files=pull.get("changed_files"))


async def _default_branch_packs(reader: RepoReader | None, event: Event) -> list[Pack]:
    if reader is None:  # the repository cannot be read: the packs applied by default
        return resolve_packs(parse_config(None))
    branch = (event.payload.get("repository") or {}).get("default_branch") or "HEAD"
    loaded = await load_rules(reader, event.repo or "", branch)
    return [] if isinstance(loaded, SourceError) else loaded[1]


async def _review(
    diff: Diff,
    reader: RepoReader,
    repo: str,
    commits: tuple[str, str],
    config: RepoConfig,
    packs: Sequence[Pack],
    suppressed: set[str],
) -> ReviewResult:
    """Run the engine on the (base, head) `commits`; files it wants whole (layering, sizes,
    schemas) are fetched concurrently, in rounds: a pass names the files it lacks, they
    are fetched, and the pass runs again until it lacks none (a rule may want a base
    file only once it has seen the head one; each round fetches something new, so the
    rounds end)."""
    packs = [pack.model_copy(update={"rules": [r for r in pack.rules if r.id not in suppressed]}) for pack in packs]
    base, head = commits
    contents: dict[tuple[str, str], bytes | None] = {}
    wanted: set[tuple[str, str]] = set()

    def at(ref: str) -> Callable[[str], bytes | None]:
        def read(path: str) -> bytes | None:
            if (ref, path) not in contents:
                wanted.add((ref, path))
            return contents.get((ref, path))

        return read

    while True:
        result = review(diff, at(head), config, packs, files_at_base=at(base))
        if not wanted:
            return result
        keys = sorted(wanted)
        wanted.clear()
        contents.update(
            zip(keys, await asyncio.gather(*(reader.file_at(repo, ref, path) for ref, path in keys)), strict=True)
        )


def _record_findings(store: Store, event: Event, result: ReviewResult) -> None:
    """The ledger gets every rule that fired without a model (the LLM rung writes its own rows)."""
    where = LedgerOwner(repo=event.repo, delivery_id=event.delivery_id, installation_id=event.installation_id)
    record_entries(
        store,
        where,
        [
            Entry(
                WowVisionPrime.name,
                f.rule,
                "deterministic",
                "settled",
                input_hash=f.fingerprint,
                outcome={"status": "settled", "severity": f.severity, "path": f.path, "line": f.line},
            )
            for f in result.findings
            if f.rung == "deterministic"
        ],
    )


def _audit_ignore(store: Store, event: Event, rule: str, reason: str) -> None:
    with store.session() as session:
        session.add(
            AuditEntry(
                actor=event.sender_login or "unknown",
                action="wowvision.ignore",
                target=f"{event.repo}:{rule}",
                details={"reason": reason, "delivery": event.delivery_id},
                installation_id=event.installation_id,
            )
        )


def _remember(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "path": finding.path,
        "line": finding.line,
        "message": finding.message,
        "severity": finding.severity,
    }


def _check_run(repo: str, head_sha: str, result: ReviewResult) -> CheckRun:
    summary = result.summary
    title = counts(summary) if summary.findings else "No findings"
    annotations = tuple(
        Annotation(
            f.path,
            f.line,
            f.end_line or f.line,
            LEVEL[f.severity],
            f.message + (f"\n{f.hint}" if f.hint else ""),
            title=f.rule,
        )
        for f in result.findings
        if f.path is not None and f.line is not None
    )
    return CheckRun(repo, head_sha, CHECK_NAME, title, render_review_markdown(result), summary.conclusion, annotations)


def _inline_text(finding: Finding) -> str:
    hint = f"\n\n{md.prose(finding.hint)}" if finding.hint else ""
    return f"**{finding.severity}** {md.code(finding.rule)} — {md.prose(finding.message)}{hint}"


def _summary(result: ReviewResult, fixed: list[dict[str, Any]], head_sha: str) -> str:
    text = render_review_markdown(result, title=f"WowVision at {head_sha[:7]}")
    if fixed:
        text += (
            "\n**Fixed since the last review**\n\n"
            + "\n".join(
                f"- ~~{md.code(item['rule'])} {md.code(location(item['path'], item['line']))} — "
                f"{md.prose(item['message'])}~~"
                for item in fixed
            )
            + "\n"
        )
    return text


def _rule_issue(rule: str, items: dict[str, dict[str, Any]], sha: str) -> str:
    lines = [f"WowVision finds {md.code(rule)} on the default branch (as of {sha[:7]}):", ""]
    lines += [
        f"- {md.code(location(item['path'], item['line']))} — {md.prose(item['message'])}" for item in items.values()
    ]
    lines += ["", "This issue is updated on every push and closed when no finding is left."]
    return "\n".join(lines)


def _invalid_config(repo: str, number: int, head_sha: str, error: SourceError) -> list[Output]:
    text = _config_error_text(error)
    return [
        CheckRun(repo, head_sha, CHECK_NAME, f"{error.source} is invalid", text, "failure"),
        Comment(repo, number, text, key=f"summary:{number}"),
    ]


def _config_error_text(error: SourceError) -> str:
    return (
        f"### WowVision cannot review: {md.code(error.source)} is invalid\n\n{md.code_block(error)}\n\n"
        "Fix the file on the base branch; the defaults are not used in its place."
    )
