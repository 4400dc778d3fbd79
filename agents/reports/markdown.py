"""The daily report as Markdown: what a maintainer reads in a minute.

Names and messages that come from outside (repositories, event names, rules, error
text) go through agents.markdown: the Markdown is also rendered to HTML on the app and
posted to GitHub, and must not carry markup it did not write.
"""

from __future__ import annotations

import re
from statistics import mean

from agents.markdown import code, link, text
from agents.reports.charts import CHARTS, chart_filename
from agents.reports.model import RUNGS, DailyReport, DaySeries, without_llm_share

NO_DATA = "no data yet"
_ISSUE_URL = re.compile(r"https://[^/]+/(?P<repo>[^/]+/[^/]+)/(?:issues|pull)/(?P<number>\d+)")
CHART_TITLES = {"decisions": "Decisions by rung per day", "cost": "LLM cost per day vs budget"}


def number(value: int) -> str:
    return f"{value:,}"


def usd(value: float) -> str:
    return f"${value:,.4f}" if 0 < value < 0.01 else f"${value:,.2f}"


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.1f} s"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def image_links(report: DailyReport, base: str = "", suffix: str = "") -> dict[str, str]:
    """Where the Markdown finds its charts: beside it by default, or at `base` + file name + `suffix`."""
    return {chart: base + chart_filename(report, chart) + suffix for chart in CHARTS}


def trend(today: float, previous: list[float]) -> str:
    """↑ / ↓ / → against the mean of the previous days that have data."""
    if not previous:
        return "—"
    average = mean(previous)
    if average == 0:
        return "→" if today == 0 else "↑ new"
    change = (today - average) / average
    if abs(change) < 0.05:
        return "→"
    return f"{'↑' if change > 0 else '↓'} {change:+.0%}"


def _previous(report: DailyReport, figure: str) -> tuple[float, list[float]]:
    def value(day: DaySeries) -> float:
        if figure == "decisions":
            return day.decisions_total
        if figure == "without_llm":
            return without_llm_share(day.decisions) or 0.0
        return float(getattr(day, figure))

    days = report.previous_days()
    if figure == "without_llm":
        days = [d for d in days if without_llm_share(d.decisions) is not None]
    today = next(d for d in report.series if d.date == report.date)
    return value(today), [value(d) for d in days]


def render_markdown(report: DailyReport, images: dict[str, str] | None = None) -> str:
    """The report; `images` maps each chart to its link (None: no charts in the text)."""
    lines: list[str] = [f"# WAOOAW daily report — {report.date.isoformat()}", ""]
    lines.append(
        f"_{report.start[:16].replace('T', ' ')} → {report.end[:16].replace('T', ' ')} "
        f"({text(report.timezone)}) · generated {report.generated_at.replace('T', ' ')}_"
    )
    lines.append("")
    if report.empty:
        lines += ["**An empty day: no activity was recorded** — no events, agent runs, decisions or outputs.", ""]
    elif not report.complete:
        lines += ["**The day is not over yet**: these are partial figures.", ""]
    lines += _headline(report)
    lines += _health(report)
    if report.agents:
        lines += _agents(report)
    if images:
        lines += ["## Charts", ""]
        for chart in CHARTS:
            if chart in images:
                lines += [f"![{CHART_TITLES[chart]}]({images[chart]})", ""]
    lines += _outputs(report)
    lines += _wowvision(report)
    lines += _coe(report)
    lines += _reputation(report)
    lines += _conversations(report)
    if report.events_by_kind:
        lines += ["## Events received", "", "| event | count |", "|---|---:|"]
        lines += [f"| {code(c.name)} | {number(c.count)} |" for c in report.events_by_kind]
        lines.append("")
    if report.audit:
        lines += ["## Audit", "", "| action | count |", "|---|---:|"]
        lines += [f"| {code(c.name)} | {number(c.count)} |" for c in report.audit]
        lines.append("")
    if report.links:
        lines += ["## Links", ""]
        lines += [_link(link.url, link.repo, link.kind, link.agent) for link in report.links]
        lines.append("")
    if report.notes:
        lines += ["## Data notes", ""]
        lines += [f"- {note}" for note in report.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _headline(report: DailyReport) -> list[str]:
    h = report.headline
    edited = f" (+{number(h.outputs_edited)} edited)" if h.outputs_edited else ""
    rows = [
        ("Events received", number(h.events), "events"),
        ("Agent runs", number(h.agent_runs), "runs"),
        ("Run failures", number(report.health.run_failures), "run_failures"),
        ("Outputs published", number(h.outputs_published) + edited, "outputs"),
        ("Decisions", number(h.decisions_total), "decisions"),
        ("Settled without the LLM", share(h.without_llm_share), "without_llm"),
        ("LLM spend", _spend(h.total_cost_usd, h.budget_usd), "total_cost_usd"),
        ("· agents (decision ledger)", usd(h.cost_usd), "cost_usd"),
        ("· CoE jobs (steps committed)", usd(h.coe_cost_usd), "coe_cost_usd"),
    ]
    previous_days = len(report.previous_days())
    against = f"trend vs the {previous_days} day(s) before" if previous_days else "trend (no earlier days yet)"
    lines = ["## Headline", "", f"| | this day | {against} |", "|---|---:|:---:|"]
    for label, value, figure in rows:
        today, previous = _previous(report, figure)
        lines.append(f"| {label} | {value} | {trend(today, previous)} |")
    w, c = report.wowvision, report.coe
    findings = " / ".join(NO_DATA if n is None else number(n) for n in (w.findings_opened, w.findings_fixed))
    lines.append(f"| Findings opened / fixed | {findings} | |")
    lines.append(
        f"| CoE jobs started / finished / questions for humans | {number(c.jobs_started)} / "
        f"{number(c.jobs_done + c.jobs_failed)} / {number(len(c.escalations_opened))} | |"
    )
    lines.append("")
    return lines


def _spend(cost: float, budget: float | None) -> str:
    if budget is None:
        return f"{usd(cost)} (no budget set)"
    used = f"{cost / budget:.0%}" if budget else "—"
    flag = " **over budget**" if cost > budget else ""
    return f"{usd(cost)} of {usd(budget)} ({used}){flag}"


def _health(report: DailyReport) -> list[str]:
    health, events = report.health, report.headline.events_by_status
    lines = ["## Health", ""]
    lines.append(
        f"- Run failures: {number(health.run_failures)}"
        + (f" ({number(health.run_timeouts)} timed out)" if health.run_timeouts else "")
    )
    lines.append(
        f"- Dead letters: {number(health.dead_letters)}; still failing and being retried: "
        f"{number(health.failing)}; still queued: {number(health.queued)}"
    )
    lines.append(
        f"- Recovered: {number(health.retried_deliveries)} deliveries handled after more than one attempt; "
        f"{number(health.abandoned_runs)} runs left by a stopped worker and taken over"
    )
    held = " (the Anthropic API kept failing: LLM calls were held, their items skipped)" if health.breaker_trips else ""
    lines.append(f"- Circuit-breaker trips: {number(health.breaker_trips)}{held}")
    if events:
        lines.append("- Events by outcome: " + ", ".join(f"{text(s)} {number(n)}" for s, n in sorted(events.items())))
    if health.top_errors:
        lines += ["", "| agent | status | error | runs |", "|---|---|---|---:|"]
        lines += [
            f"| {code(e.agent)} | {text(e.status)} | {text(e.error) or '—'} | {number(e.count)} |"
            for e in health.top_errors
        ]
    lines.append("")
    return lines


def _agents(report: DailyReport) -> list[str]:
    seen = {rung for agent in report.agents for rung in agent.decisions}
    rungs = list(RUNGS) + sorted(seen - set(RUNGS))
    head = [
        "agent",
        "wakes",
        "runs",
        "failures",
        *[r if r != "llm" else "LLM" for r in rungs],
        "without LLM",
        "tokens in / out",
        "cost",
        "p50",
        "p95",
        "outputs",
    ]
    lines = ["## Agents", "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for a in report.agents:
        outputs = ", ".join(f"{number(n)} {text(kind)}" for kind, n in sorted(a.outputs.items())) or "—"
        failures = number(a.failures) + (f" (+{number(a.abandoned)} abandoned)" if a.abandoned else "")
        cells = [
            code(a.agent),
            number(a.wakes),
            number(a.runs),
            failures,
            *[number(a.decisions.get(r, 0)) for r in rungs],
            share(a.without_llm_share),
            f"{number(a.tokens_in)} / {number(a.tokens_out)}",
            usd(a.cost_usd),
            duration(a.p50_ms),
            duration(a.p95_ms),
            outputs,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _outputs(report: DailyReport) -> list[str]:
    lines = ["## Outputs on GitHub", ""]
    if not report.outputs:
        return lines + ["_None published or edited this day._", ""]
    lines += ["| kind | published | edited |", "|---|---:|---:|"]
    lines += [f"| {text(o.kind)} | {number(o.published)} | {number(o.edited)} |" for o in report.outputs]
    return lines + [""]


def _wowvision(report: DailyReport) -> list[str]:
    w = report.wowvision
    lines = ["## WowVision", ""]
    if not (w.decisions or w.outputs or w.top_rules):
        return lines + [
            f"_{NO_DATA.capitalize()}: WowVision recorded no decisions or outputs this day, and its "
            "findings are not in the store yet._",
            "",
        ]
    lines.append(
        f"- Decisions: {number(w.decisions)}; outputs: "
        + (", ".join(f"{number(n)} {text(k)}" for k, n in sorted(w.outputs.items())) or "none")
    )
    opened = NO_DATA if w.findings_opened is None else number(w.findings_opened)
    fixed = NO_DATA if w.findings_fixed is None else number(w.findings_fixed)
    suppressed = NO_DATA if w.suppressions_added is None else number(w.suppressions_added)
    lines.append(f"- Findings opened: {opened}; fixed: {fixed}; rules ignored (`/wowvision ignore`): {suppressed}")
    if w.repos_most_open:
        lines.append(
            "- Repositories with the most findings: "
            + ", ".join(f"{text(r.name)} ({number(r.count)})" for r in w.repos_most_open)
        )
    if w.top_rules:
        lines += ["", "Rules decided most often (decision ledger):", "", "| rule | decisions |", "|---|---:|"]
        lines += [f"| {code(r.name)} | {number(r.count)} |" for r in w.top_rules]
    return lines + [""]


def _coe(report: DailyReport) -> list[str]:
    c = report.coe
    lines = ["## CoE jobs", ""]
    if c.quiet:
        return lines + ["No CoE jobs.", ""]
    lines.append(
        f"- Jobs started: {number(c.jobs_started)}; done: {number(c.jobs_done)}; "
        f"failed or cancelled: {number(c.jobs_failed)}; parked, waiting for a human: {number(c.jobs_parked)}; "
        f"still queued or running: {number(c.jobs_running)}"
    )
    spend = c.spend
    lines.append(
        f"- Spend on the {number(spend.steps)} step(s) committed this day: {usd(spend.cost_usd)}, "
        f"{number(spend.model_calls)} model call(s), {number(spend.tokens_in)} / "
        f"{number(spend.tokens_out)} tokens in / out"
    )
    if c.escalations_opened:
        lines.append(
            "- Questions for humans asked this day: "
            + ", ".join(
                f"{code(e.job)} #{e.n} {text(e.kind)} ({text(e.status)}"
                + (f", {text(e.repo)}#{e.issue_number})" if e.issue_number else ")")
                for e in c.escalations_opened
            )
        )
    else:
        lines.append("- Questions for humans asked this day: none")
    if c.handoffs_created or c.handoffs_claimed:
        lines.append(f"- Handoffs made: {number(c.handoffs_created)}; claimed: {number(c.handoffs_claimed)}")
    if c.jobs:
        lines += [
            "",
            "| repo | domain | job | status | depth | spent / budget | model calls | tokens in / out "
            "| open questions | mean confidence | PR |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for j in c.jobs:
            confidence = "—" if j.mean_confidence is None else f"{j.mean_confidence:.2f}"
            pr = link(_pr_label(j.pr_url), j.pr_url) if j.pr_url else "—"
            lines.append(
                f"| {text(j.repo)} | {text(j.domain)} | {code(j.job)} | {text(j.status)} | {text(j.depth)} "
                f"| {usd(j.spent_usd)} / {usd(j.budget_usd)} | {number(j.model_calls)} "
                f"| {number(j.tokens_in)} / {number(j.tokens_out)} | {number(j.open_questions)} "
                f"| {confidence} | {pr} |"
            )
        if c.jobs_total > len(c.jobs):
            lines += ["", f"_and {number(c.jobs_total - len(c.jobs))} more job(s) not listed._"]
    return lines + [""]


def _reputation(report: DailyReport) -> list[str]:
    lines = ["## Reputation", ""]
    if not report.reputation:
        return lines + ["_No outcome of an agent's output is recorded yet._", ""]
    lines += [
        "From what became of each agent's outputs: findings fixed or ignored, review threads resolved, "
        "triage kept, pull requests merged, 👍/👎 (see docs/reputation.md).",
        "",
        "| repo | agent | score | outcomes + / − | this day + / − | by kind |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in report.reputation:
        kinds = ", ".join(f"{number(n)} {code(kind)}" for kind, n in sorted(r.by_kind.items()))
        lines.append(
            f"| {text(r.repo)} | {code(r.agent)} | {r.score:.2f} | {number(r.positive)} / {number(r.negative)} "
            f"| {number(r.positive_today)} / {number(r.negative_today)} | {kinds} |"
        )
    return lines + [""]


def _conversations(report: DailyReport) -> list[str]:
    c = report.conversations
    lines = ["## Conversations between agents", ""]
    if not c.total:
        return lines + ["No messages between agents.", ""]
    lines += [
        f"{number(c.messages)} message(s) in {number(c.total)} conversation(s); "
        "`waooaw messages list --correlation ID` shows one.",
        "",
        "| conversation | repo | messages | participants | outcome |",
        "|---|---|---:|---|---|",
    ]
    for v in c.listed:
        outcome = text(v.outcome) + (f", {number(v.undelivered)} undelivered" if v.undelivered else "")
        participants = " · ".join(text(name) for name in v.participants)
        lines.append(
            f"| {code(v.correlation_id)} | {text(v.repo)} | {number(v.messages)} | {participants} | {outcome} |"
        )
    if c.total > len(c.listed):
        lines += ["", f"_and {number(c.total - len(c.listed))} more conversation(s) not listed._"]
    return lines + [""]


def _pr_label(url: str) -> str:
    match = _ISSUE_URL.match(url)
    return f"#{match['number']}" if match else "PR"


def _link(url: str, repo: str, kind: str, agent: str) -> str:
    match = _ISSUE_URL.match(url)
    label = f"{match['repo']}#{match['number']}" if match else f"{repo} {kind}"
    return f"- {link(label, url)} — {text(agent)} {text(kind)}"
