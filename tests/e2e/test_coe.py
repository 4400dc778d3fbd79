"""/onboard-domain end to end: `waooaw serve` + `waooaw worker` on PostgreSQL and Redis, the runner
as a real `waooaw coe run` process that trades a (fake) Actions OIDC token for its tokens, fake
GitHub, fake Anthropic scripted per agent. SIGKILL at several points, then resume."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agents.context.client import DbContextClient
from agents.domain.spec import load_yaml
from agents.factory.catalogue import load_specs
from agents.ledger import Entry, LedgerOwner, record_entries
from agents.store.tables import InboxRecord
from agents.tokens import Grant
from bot.files import write_files
from tests.conftest import load_payload
from tests.e2e.conftest import Process, Server, wait_until
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.domain import DomainScript
from tests.fakes.github import FakeGitHub
from tests.fakes.oidc import FakeOidcIssuer
from tests.helpers import signed_headers

REPO = "Codertocat/Hello-World"
INSTALLATION = 957387  # installation/created.payload.json installs the App on REPO
SPEC = "domains/digital-marketing/spec.yaml"
CLEAN_RUN_CALLS = 14
# A run of the workflow on the default branch, with the ids installation/created.payload.json installs the App on.
RUNNER_CLAIMS = {
    "repository": REPO,
    "repository_id": "186853002",
    "repository_owner_id": "21031067",
    "workflow_ref": f"{REPO}/.github/workflows/waooaw-coe.yml@refs/heads/master",
}


@dataclass
class World:
    github: FakeGitHub
    anthropic: FakeAnthropic
    script: DomainScript
    issuer: FakeOidcIssuer
    server: Server
    env: dict[str, str]
    start: Callable[..., Process]
    tmp: Path

    def deliver(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        response = httpx.post(
            f"{self.server.url}/webhooks/github",
            content=body,
            headers=signed_headers(body, event, str(uuid.uuid4())),
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def comment(self, text: str, *, issue: int = 1, login: str = "Codertocat", issue_body: str | None = None) -> None:
        payload = load_payload("issue_comment/created.with-installation.payload.json", comment__body=text)
        payload["issue"]["number"] = issue
        payload["comment"]["id"] = int(uuid.uuid4().int % 10**9)
        payload["sender"]["login"] = login
        payload["installation"]["id"] = INSTALLATION
        if issue_body is not None:
            payload["issue"]["body"] = issue_body
        self.deliver("issue_comment", payload)

    def replies(self, needle: str) -> list[dict[str, Any]]:
        return [c for c in self.github.comments.values() if needle in (c["body"] or "")]

    def runner(self, job: str, name: str) -> Process:
        env = {
            k: v
            for k, v in self.env.items()
            if not k.startswith(("GITHUB_APP_", "WAOOAW_DATABASE_URL", "WAOOAW_REDIS"))
        }
        env |= {"WAOOAW_API_URL": self.server.url, "GITHUB_REPOSITORY": REPO, **self.issuer.runner_env(**RUNNER_CLAIMS)}
        out = self.tmp / name
        return Process(
            ["coe", "run", "domain-onboarding", "--job", job, "--resume", "--out", str(out)],
            env,
            self.tmp / f"{name}.log",
        )

    def finish(self, job: str, name: str) -> Path:
        process = self.runner(job, name)
        code = process.popen.wait(timeout=120)
        process.stop()
        assert code == 0, process.output()
        return self.tmp / name

    def dispatched(self, n: int) -> str:
        wait_until(lambda: len(self.github.dispatches) >= n, f"dispatch number {n}")
        return self.github.dispatches[n - 1]["inputs"]["job"]


@pytest.fixture
def world(request, fake_github, base_env, processes, pg_store, redis_url, tmp_path) -> Iterator[World]:
    """The app and a worker; parametrised indirectly, more of the operator's settings."""
    with FakeAnthropic() as anthropic, FakeOidcIssuer() as issuer:
        anthropic.responder = script = DomainScript()
        env = (
            base_env
            | getattr(request, "param", {})
            | {
                "WAOOAW_DATABASE_URL": pg_store.url,
                "WAOOAW_REDIS_URL": redis_url,
                "WAOOAW_BUS_STREAM": f"e2e:{uuid.uuid4().hex}",
                "WAOOAW_OIDC_ISSUER": issuer.url,
                "ANTHROPIC_API_KEY": "test-key",
                "ANTHROPIC_BASE_URL": anthropic.url,
            }
        )
        server = processes("serve", env)
        processes("worker", env)
        fake_github.set_permission("Codertocat", "write")
        world = World(fake_github, anthropic, script, issuer, server, env, processes, tmp_path)
        world.deliver("installation", load_payload("installation/created.payload.json"))
        yield world


def test_onboard_domain_runs_on_a_runner_and_opens_one_pull_request(world: World):
    world.comment("/onboard-domain Digital Marketing --depth quick")
    job = world.dispatched(1)
    dispatch = world.github.dispatches[0]
    assert (dispatch["workflow"], dispatch["inputs"]) == ("waooaw-coe.yml", {"job": job})  # no token in the inputs
    [tracking] = wait_until(lambda: world.replies(f"waooaw:wowdomain:comment:{job}"), "the tracking comment")
    assert "- [ ] 1. Intake and plan" in tracking["body"] and "$0.0000 of $0.50" in tracking["body"]

    world.comment("/onboard-domain digital marketing")  # the same domain while the job runs
    [refused] = wait_until(lambda: world.replies("already onboarding"), "the duplicate's answer")
    assert job in refused["body"] and len(world.github.dispatches) == 1

    out = world.finish(job, "run")
    spec = load_yaml((out / SPEC).read_text())
    assert spec.job == job and world.script.total == CLEAN_RUN_CALLS
    [pr] = domain_pulls(world)
    assert pr["head"]["ref"] == "waooaw/domain/digital-marketing" and "mean skill confidence" in pr["body"]
    committed = {c["path"]: c["content"].decode() for c in world.github.commits}
    assert load_yaml(committed[SPEC]) == spec and committed["domains/digital-marketing/spec.md"].startswith("# Digital")
    # The roles, offered as draft agent specs in a pull request of their own, which validate as they are.
    [drafts] = [pull for pull in world.github.pull_requests if pull not in domain_pulls(world)]
    assert drafts["head"]["ref"] == "waooaw/agents/digital-marketing" and "hires none of them" in drafts["body"]
    proposed = {path: text for path, text in committed.items() if path.startswith(".github/waooaw/agents/")}
    assert len([path for path in proposed if path.endswith(".yaml")]) == len(spec.roles)
    write_files(world.tmp / "proposed", proposed)
    assert len(load_specs([world.tmp / "proposed" / ".github/waooaw/agents"])) == len(spec.roles)
    [tracking] = world.replies(f"waooaw:wowdomain:comment:{job}")
    assert "- [x] 7. Publication and learning" in tracking["body"] and pr["html_url"] in tracking["body"]


def test_only_writers_may_start_a_job(world: World):
    world.github.set_permission("stranger", "read")
    world.comment("/onboard-domain Payments", login="stranger")
    wait_until(lambda: world.replies("needs write access"), "the refusal")
    assert world.github.dispatches == []


def test_without_an_llm_key_the_command_answers_at_once_and_queues_nothing(fake_github, base_env, processes, tmp_path):
    server = processes("serve", base_env)  # embedded default, no ANTHROPIC_API_KEY
    fake_github.set_permission("Codertocat", "write")
    payload = load_payload(
        "issue_comment/created.with-installation.payload.json", comment__body="/onboard-domain Payments"
    )
    body = json.dumps(payload).encode()
    httpx.post(f"{server.url}/webhooks/github", content=body, headers=signed_headers(body, "issue_comment"), timeout=10)
    [answer] = wait_until(
        lambda: [c for c in fake_github.comments.values() if "not configured" in c["body"]], "the answer"
    )
    assert "nothing was queued" in answer["body"] and fake_github.dispatches == []


def test_sigkill_anywhere_then_resume_gives_the_same_spec_without_paying_or_posting_twice(world: World):
    world.comment("/onboard-domain Digital Marketing --depth quick")
    reference = load_yaml((world.finish(world.dispatched(1), "clean") / SPEC).read_text())
    world.script.calls.clear()

    world.comment("/onboard-domain Digital Marketing --depth quick")  # the first job is done: a new one may start
    job = world.dispatched(2)

    # 1. While a model call is in flight.
    world.script.hold("tool-discovery")
    doomed = world.runner(job, "kill-1")
    wait_until(world.script.arrived.is_set, "tool-discovery's call to reach the model")
    doomed.kill()
    world.script.release()  # the model answers a runner that is gone: that one call is lost, not repeated twice

    # 2. After a step is committed, while its tracking-comment update is in flight.
    world.github.hold("PATCH", r"/issues/comments/\d+$")
    doomed = world.runner(job, "kill-2")
    wait_until(lambda: world.github.held >= 1, "a tracking-comment update")
    doomed.kill()
    world.github.release()

    # 3. While GitHub creates the pull request.
    world.github.hold("POST", r"/pulls$")
    doomed = world.runner(job, "kill-3")
    wait_until(lambda: world.github.held >= 1, "the pull request to be created", timeout=60)
    doomed.kill()
    world.github.release()

    spec = load_yaml((world.finish(job, "resumed") / SPEC).read_text())
    assert _content(spec) == _content(reference)
    assert world.script.total == CLEAN_RUN_CALLS + 1  # every call once, plus the one killed in flight
    assert len(domain_pulls(world)) == 1  # the domain's one PR, updated, never a second
    assert len(world.replies(f"waooaw:wowdomain:comment:{job}")) == 1


def test_low_confidence_asks_a_human_and_answer_resumes_the_job(world: World, pg_store):
    world.script.confidence["seo-audit"] = 0.2
    world.comment("/onboard-domain Digital Marketing --depth quick")
    job = world.dispatched(1)
    parked = world.runner(job, "parked")
    assert parked.popen.wait(timeout=120) == 3, parked.output()
    parked.stop()
    [question] = [i for i in world.github.issues.values() if f"{job}:esc-1" in (i["body"] or "")]
    assert [label["name"] for label in question["labels"]] == ["needs-human"] and "seo-audit" in question["body"]
    assert world.github.pull_requests == []
    record = DbContextClient(pg_store, Grant(INSTALLATION)).get(REPO, "wowdomain", job)
    assert record is not None and record.data["escalations"][0]["issue_number"] == question["number"]

    # A reader copies the question into an issue of her own and closes it: the job stays parked.
    world.github.set_permission("stranger", "read")
    stranger = world.github.user("stranger", 31337)
    forged = load_payload("issues/reopened.payload.json", action="closed", sender=stranger)
    forged["issue"].update(number=question["number"] + 100, body=question["body"], user=stranger, state="closed")
    forged["installation"] = {"id": INSTALLATION, "node_id": "x"}
    delivery = world.deliver("issues", forged)["delivery"]
    wait_until(lambda: _handled(pg_store, delivery), "the forged close to be handled")
    assert len(world.github.dispatches) == 1 and world.github.issues[(REPO, question["number"])]["state"] == "open"

    world.comment(
        "/answer Keep it: agents run Lighthouse for it.", issue=question["number"], issue_body=question["body"]
    )
    assert world.dispatched(2) == job
    wait_until(
        lambda: world.github.issues[(REPO, question["number"])]["state"] == "closed", "the question to be closed"
    )
    wait_until(lambda: world.replies(f"resuming job `{job}`"), "the reply to the answer")

    spec = load_yaml((world.finish(job, "answered") / SPEC).read_text())
    seo = next(s for s in spec.skills if s.id == "seo-audit")
    assert seo.confirmed_by == "Codertocat" and "Lighthouse" in (seo.human_note or "")
    assert len(domain_pulls(world)) == 1 and spec.figures.escalations == 1


def domain_pulls(world: World) -> list[dict[str, Any]]:
    """The job's domain specification pull requests (the draft agents' is the other)."""
    return [pull for pull in world.github.pull_requests if pull["head"]["ref"].startswith("waooaw/domain/")]


@pytest.mark.parametrize("world", [{"WAOOAW_LLM_INSTALLATION_MONTHLY_BUDGET_USD": "1.00"}], indirect=True)
def test_a_runner_parks_when_wowvision_spent_the_installations_month(world: World, pg_store):
    """The runner reaches the app alone: the app tells it what the operator's limits leave."""
    earlier = [Entry("wowvision", "arch.no-sql-in-views", "llm", "settled", cost_usd=0.99, model_calls=1)]
    record_entries(pg_store, LedgerOwner(repo="Codertocat/other", installation_id=INSTALLATION), earlier)
    world.comment("/onboard-domain Digital Marketing --depth quick")
    job = world.dispatched(1)
    parked = world.runner(job, "limited")
    assert parked.popen.wait(timeout=120) == 3, parked.output()
    parked.stop()
    limit = f"the monthly LLM budget of installation {INSTALLATION} ($1.00)"
    assert f"parked (budget): {limit[0].upper()}{limit[1:]} is spent" in parked.output()
    assert world.script.total == 0 and world.github.pull_requests == []
    [question] = [i for i in world.github.issues.values() if f"{job}:esc-1" in (i["body"] or "")]
    assert "It is the operator's limit, not the job's budget" in question["body"]
    [tracking] = world.replies(f"waooaw:wowdomain:comment:{job}")
    assert f"(budget: {limit.replace('$', '&#36;')} is spent) in #{question['number']}: open" in tracking["body"]


def _handled(store: Any, delivery: str) -> bool:
    with store.reading() as session:
        record = session.get(InboxRecord, delivery)
        return record is not None and record.status == "done"


def _content(spec: Any) -> dict[str, Any]:
    """What the spec says, without what names or prices this particular job."""
    data = yaml.safe_load(json.dumps(spec.model_dump(mode="json")))
    for key in ("job", "figures"):
        data.pop(key)
    for entry in data["provenance"]:
        entry.pop("input_hash")
    return data
