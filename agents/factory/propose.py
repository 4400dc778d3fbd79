"""From a WowDomain spec to draft agent specs: one per role, with its responsibilities and skills.

A draft wakes only on its own slash command, answers in one comment, and needs write
access to run: it is a starting point that validates and whose example passes, for a
maintainer to give real reads, instructions and outputs. Like every spec agent it is off
until a repository hires it; its header says so. `waooaw agents propose` writes the drafts;
after a `/onboard-domain` job the CoE runner offers them as a pull request under
`PROPOSED_DIR` (agents/domain/runner.py).
"""

from __future__ import annotations

import re
from typing import Any

from agents import markdown as md
from agents.domain.spec import DomainSpec
from agents.factory.skeleton import comment_payload, dump, payload_text
from agents.factory.spec import SPEC_VERSION
from agents.outputs import PullRequest

PROPOSED_DIR = ".github/waooaw/agents"  # where the onboarding's pull request puts the drafts
NAME_MAX = 40
COMMAND_NAME_MAX = 30


def slug(text: str, limit: int = NAME_MAX) -> str:
    """A spec name from free text: lowercase words joined by '-', starting with a letter."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    name = "-".join(words)[:limit].strip("-") or "agent"
    return name if name[0].isalpha() and len(name) >= 2 else f"a-{name}"[:limit]


def _literal(text: str) -> str:
    """Domain text (a model wrote it) as a template's own text: no braces to open a Jinja tag."""
    return text.replace("{", "(").replace("}", ")")


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"-{n}"
        candidate, n = name[: NAME_MAX - len(suffix)].rstrip("-") + suffix, n + 1
    taken.add(candidate)
    return candidate


def _header(domain: DomainSpec, role: str) -> str:
    return f"""\
DRAFT, proposed from the WowDomain spec of {domain.domain} (job {domain.job}), role "{role}".
It is not hired anywhere: like every spec agent it stays off on a repository until a maintainer
enables it there (`agents: {{enable: [NAME]}}` in .github/waooaw.yml, or `/waooaw hire NAME`).
Before that, give it the reads, instructions and outputs its job needs, and examples that show them:
see docs/writing-an-agent-spec.md; check it with `waooaw agents validate` and `waooaw agents test`."""


def propose(domain: DomainSpec) -> dict[str, str]:
    """Draft specs for the domain's roles: relative path → text (`<coe>/<name>.yaml` and its example)."""
    coe = slug(domain.slug)
    skills = {skill.id: skill for skill in domain.skills}
    taken: set[str] = set()
    files: dict[str, str] = {}
    for role in domain.roles:
        name = _unique(slug(role.name), taken)
        command = "/" + name[:COMMAND_NAME_MAX].rstrip("-")
        known = [skills[skill] for skill in role.skills if skill in skills]
        duties = "\n".join(f"- {_literal(duty)}" for duty in role.responsibilities)
        abilities = "\n".join(f"- {_literal(s.name)}: {_literal(s.description)}" for s in known) or "- (none listed)"
        title = _literal(role.name)[:80]
        example = f"examples/{name}.command.json"
        spec: dict[str, Any] = {
            "spec": SPEC_VERSION,
            "name": name,
            "coe": coe,
            "title": title,
            "description": (
                f"Draft of the {title} of the {_literal(domain.domain)} domain: answers `{command}` in an issue with "
                "advice in one comment. It reads only that issue and its comments; it cannot act on the "
                "repository, and what it says is the model's advice, to be checked by a person."
            ),
            "command": {"name": command, "needs_write": True, "summary": f"ask the {title}"},
            "reads": ["issue"],
            "instructions": (
                f"You are the {title} of a team working in {_literal(domain.domain)}.\n"
                f"Your responsibilities:\n{duties}\n\nYour skills:\n{abilities}\n\n"
                "Issue #{{ issue.number }} of {{ repo }}, titled {{ issue.title }}:\n{{ issue.body }}\n\n"
                "Its comments: {{ issue.comments }}\n\n"
                "Answer the latest request in the issue from your role, in a few short paragraphs.\n"
            ),
            "answer": {
                "type": "object",
                "properties": {"reply": {"type": "string", "maxLength": 4000}},
                "required": ["reply"],
            },
            "outputs": [{"comment": {"body": f"**{md.text(title)}** (draft agent)\n\n{{{{ answer.reply | lines }}}}"}}],
            "limits": {"outputs_per_event": 1, "usd_per_run": 0.05},
            "examples": [
                {
                    "name": f"{command} is answered in one comment",
                    "event": {"name": "issue_comment", "action": "created", "payload_file": example},
                    "answer": {"reply": "Here is what I would do first."},
                    "expect": [{"kind": "comment", "contains": "Here is what I would do first."}],
                }
            ],
        }
        files[f"{coe}/{name}.yaml"] = dump(_header(domain, role.name), spec)
        files[f"{coe}/{example}"] = payload_text(comment_payload(f"{command} what should we do first?"))
    return files


def proposal_pull_request(repo: str, job_id: str, domain: DomainSpec) -> PullRequest:
    """The drafts as a pull request under PROPOSED_DIR: one per job, updated in place (key `<job>:agents`)."""
    drafts = propose(domain)
    names = sorted(path.rsplit("/", 1)[-1].removesuffix(".yaml") for path in drafts if path.endswith(".yaml"))
    body = "\n".join(
        [
            f"Draft agent specs for the {md.text(domain.domain)} domain, one per role of its WowDomain "
            f"specification (job {md.code(job_id)}).",
            "",
            *(f"- {md.code(name)}" for name in names),
            "",
            "They are drafts: each answers its own slash command in one comment and does nothing else. "
            "Merging this pull request hires none of them. Nothing runs until an operator loads the "
            f"specs (`WAOOAW_AGENT_SPECS`) and a repository enables them in `.github/waooaw.yml`. Give each "
            "its reads, instructions and outputs first, then check them with `waooaw agents validate "
            f"{PROPOSED_DIR}` and `waooaw agents test {PROPOSED_DIR}`.",
        ]
    )
    return PullRequest(
        repo=repo,
        branch=f"waooaw/agents/{slug(domain.slug)}",
        title=f"Draft agents for {' '.join(domain.domain.split())[:200]}",
        body=body,
        key=f"{job_id}:agents",
        files={f"{PROPOSED_DIR}/{path}": text for path, text in drafts.items()},
        commit_message=f"Draft agent specs for the {domain.domain} domain (WowDomain job {job_id})",
    )
