"""`waooaw coe run domain-onboarding` as a user runs it: a real process, the fake Anthropic on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.domain.spec import load_yaml
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.domain import DomainScript
from tests.integration.test_cli import run


def keyed(anthropic_server: FakeAnthropic) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": anthropic_server.url}


def test_a_local_run_prints_the_job_first_and_writes_the_spec(
    tmp_path: Path, domain_script: DomainScript, anthropic_server
):
    result = run(
        [
            "coe",
            "run",
            "domain-onboarding",
            "--domain",
            "Digital Marketing",
            "--depth",
            "quick",
            "--out",
            str(tmp_path / "out"),
        ],
        tmp_path,
        **keyed(anthropic_server),
    )
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("job job-") and len(first.split()) == 2
    spec = load_yaml((tmp_path / "out/domains/digital-marketing/spec.yaml").read_text())
    assert spec.depth == "quick" and spec.job == first.split()[1]
    assert (tmp_path / "out/domains/digital-marketing/spec.md").read_text().startswith("# Digital Marketing")

    calls = domain_script.total
    again = run(
        ["coe", "run", "domain-onboarding", "--job", spec.job, "--resume", "--out", str(tmp_path / "again")],
        tmp_path,
        **keyed(anthropic_server),
    )
    assert again.returncode == 0, again.stderr
    assert domain_script.total == calls  # every step was committed: nothing is asked twice
    assert (tmp_path / "again/domains/digital-marketing/spec.yaml").read_text() == (
        tmp_path / "out/domains/digital-marketing/spec.yaml"
    ).read_text()


def test_a_parked_job_exits_3(tmp_path: Path, domain_script: DomainScript, anthropic_server):
    domain_script.confidence["seo-audit"] = 0.1
    result = run(
        ["coe", "run", "domain-onboarding", "--domain", "Digital Marketing"], tmp_path, **keyed(anthropic_server)
    )
    assert result.returncode == 3, result.stderr
    assert "parked" in result.stdout and not (tmp_path / "domains").exists()


def test_without_a_key_it_fails_clearly(tmp_path: Path):
    result = run(["coe", "run", "domain-onboarding", "--domain", "Digital Marketing"], tmp_path)
    assert result.returncode == 1 and "ANTHROPIC_API_KEY" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["coe", "run", "other-job", "--domain", "X"], "unknown CoE job"),
        (["coe", "run", "domain-onboarding"], "name the domain"),
        (["coe", "run", "domain-onboarding", "--resume"], "--resume needs --job"),
        (["coe", "run", "domain-onboarding", "--domain", "X", "--depth", "huge"], "--depth"),
        (["coe", "run", "domain-onboarding", "--job", "job-0000000000", "--resume"], "there is no job"),
        (["coe", "run", "domain-onboarding", "--domain", "!!!"], "no letters or digits"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str):
    result = run(args, tmp_path)
    assert result.returncode == 2 and message in result.stderr


def test_with_a_repo_and_a_token_the_local_run_opens_the_pull_request(
    tmp_path: Path, domain_script: DomainScript, anthropic_server
):
    from tests.fakes.github import FakeGitHub

    with FakeGitHub() as github:
        result = run(
            [
                "coe",
                "run",
                "domain-onboarding",
                "--domain",
                "Digital Marketing",
                "--depth",
                "quick",
                "--repo",
                "Codertocat/Hello-World",
            ],
            tmp_path,
            GITHUB_TOKEN="ghs_test",
            GITHUB_API_URL=github.url,
            **keyed(anthropic_server),
        )
        assert result.returncode == 0, result.stderr
        [pr, drafts] = github.pull_requests  # the spec, and the roles as draft agent specs
        assert pr["head"]["ref"] == "waooaw/domain/digital-marketing"
        assert drafts["head"]["ref"] == "waooaw/agents/digital-marketing"
        assert {c["path"] for c in github.commits if not c["path"].startswith(".github/waooaw/agents/")} == {
            "domains/digital-marketing/spec.md",
            "domains/digital-marketing/spec.yaml",
        }
        assert pr["html_url"] in result.stdout  # the last line names the PR


def test_in_app_mode_a_local_run_publishes_as_the_installation_that_holds_the_repo(
    tmp_path: Path, domain_script: DomainScript, anthropic_server
):
    """A repo with no contexts yet: its installation comes from the tenancy table, as the app's would."""
    from sqlalchemy import select

    from agents.context.models import ContextVersion
    from agents.store.db import Store
    from agents.store.tables import Installation
    from tests.fakes.github import FakeGitHub, app_private_key

    assert run(["db", "upgrade"], tmp_path).returncode == 0
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.session() as session:
        session.add(Installation(id=4242, status="active", repos=["Codertocat/Hello-World"]))
    store.dispose()
    with FakeGitHub() as github:
        result = run(
            [
                "coe",
                "run",
                "domain-onboarding",
                "--domain",
                "Digital Marketing",
                "--depth",
                "quick",
                "--repo",
                "Codertocat/Hello-World",
            ],
            tmp_path,
            GITHUB_APP_ID="7",
            GITHUB_APP_PRIVATE_KEY=app_private_key(),
            GITHUB_API_URL=github.url,
            **keyed(anthropic_server),
        )
        assert result.returncode == 0, result.stderr
        assert github.minted_tokens and all(token.startswith("ghs_fake4242x") for token in github.minted_tokens)
        assert [pr["head"]["ref"] for pr in github.pull_requests] == [
            "waooaw/domain/digital-marketing",
            "waooaw/agents/digital-marketing",
        ]
    with store.reading() as session:
        owners = set(
            session.scalars(
                select(ContextVersion.installation_id).where(ContextVersion.repo == "Codertocat/Hello-World")
            )
        )
    store.dispose()
    assert owners == {4242}  # the job's contexts are the installation's, where the app would look for them


def test_in_app_mode_a_repo_in_no_installation_is_refused_before_any_work(
    tmp_path: Path, domain_script: DomainScript, anthropic_server
):
    result = run(
        ["coe", "run", "domain-onboarding", "--domain", "Digital Marketing", "--repo", "Codertocat/Hello-World"],
        tmp_path,
        GITHUB_APP_ID="7",
        GITHUB_APP_PRIVATE_KEY="unused",
        **keyed(anthropic_server),
    )
    assert result.returncode == 2 and "in no installation of the WAOOAW App" in result.stderr
    assert domain_script.total == 0  # refused before the first model call


def test_a_job_started_before_its_installation_was_known_resumes_as_that_installation(store):
    """Its record says installation 0 (a local start); resumed once the repo's installation is known,
    it publishes as that installation instead of failing at its first output."""
    from agents.context.client import DbContextClient
    from agents.domain.job import AGENT, new_job
    from agents.tokens import Grant
    from bot.coe_cli import _job

    contexts = DbContextClient(store, Grant(4242, actor="test"))
    started = new_job(job_id="job-0000000001", domain="Digital Marketing", depth="quick", repo="Codertocat/Hello-World")
    contexts.put(started.repo, AGENT, started.id, started.data(), expected_version=None)
    resumed = _job(contexts, started.repo, 4242, started.id, None, "quick", True)
    assert resumed.id == started.id and resumed.installation_id == 4242
    assert (
        _job(contexts, started.repo, 0, started.id, None, "quick", True).installation_id == 0
    )  # nothing known: as recorded


def test_a_job_parks_exit_3_naming_the_installations_monthly_limit_wowvision_spent(
    tmp_path: Path, domain_script: DomainScript, anthropic_server
):
    """On the store (no API): the CLI holds the job to the operator's limits of its installation."""
    from agents.ledger import Entry, LedgerOwner, record_entries
    from agents.store.db import Store
    from agents.store.tables import Installation
    from tests.fakes.github import FakeGitHub

    assert run(["db", "upgrade"], tmp_path).returncode == 0
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    with store.session() as session:
        session.add(Installation(id=4242, status="active", repos=["Codertocat/Hello-World", "Codertocat/web"]))
    earlier = [Entry("wowvision", "arch.no-sql-in-views", "llm", "settled", cost_usd=1.99, model_calls=1)]
    record_entries(store, LedgerOwner(repo="Codertocat/web", installation_id=4242), earlier)
    store.dispose()
    with FakeGitHub() as github:
        result = run(
            ["coe", "run", "domain-onboarding", "--domain", "Digital Marketing", "--repo", "Codertocat/Hello-World"],
            tmp_path,
            GITHUB_TOKEN="ghs_test",
            GITHUB_API_URL=github.url,
            WAOOAW_LLM_INSTALLATION_MONTHLY_BUDGET_USD="2",
            **keyed(anthropic_server),
        )
        assert result.returncode == 3, result.stderr
        assert "parked (budget): The monthly LLM budget of installation 4242 ($2.00) is spent" in result.stdout
        assert domain_script.total == 0 and not (tmp_path / "domains").exists()
        [question] = github.issues.values()
        assert "installation 4242" in question["body"] and "operator's limit" in question["body"]
