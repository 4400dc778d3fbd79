"""The demo's sample repository and the webhook payloads GitHub would send about it.

The sample is bundled as two patches: `base.patch` (a tiny shop, its `.github/waooaw.yml`
asking for REQUEST_CHANGES reviews) and `change.patch` (a pull request that leaves a
breakpoint, a print, a wildcard import and a camel-case module behind — what rules catch —
and a swallowed error, which only a model judges: WowVision's LLM rung).
They are applied in a fresh git repository, so WowVision reviews a real `git diff`.
The payloads carry the fields our agents read (agents.events.Event); GitHub sends more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.git import Git
from bot.usage import UsageError

SAMPLE = Path(__file__).with_name("sample")
REPO = "waooaw-demo/sample-shop"  # what the sample stands for on GitHub
INSTALLATION_ID = 1
MAINTAINER: dict[str, Any] = {"login": "demo-maintainer", "id": 1001, "type": "User"}
BASE_BRANCH, HEAD_BRANCH = "main", "add-discounts"
# Commits made the same way whatever the user's git config says: no signing, no hooks.
_CLEAN = (
    "-c",
    "user.name=WAOOAW demo",
    "-c",
    "user.email=demo@waooaw.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
)


@dataclass(frozen=True)
class SampleRepo:
    path: Path
    base: str
    head: str


def build_sample(path: Path) -> SampleRepo:
    """A git repository at `path`: `main` with the shop, `add-discounts` with the change on top."""
    path.mkdir(parents=True)
    git = Git(path)
    _run(git, "init", "-q", "-b", BASE_BRANCH)
    base = _commit(git, "base.patch", "The sample shop")
    _run(git, "checkout", "-q", "-b", HEAD_BRANCH)
    head = _commit(git, "change.patch", "Add seasonal discounts")
    return SampleRepo(path, base, head)


def _commit(git: Git, patch: str, message: str) -> str:
    _run(git, "apply", "--index", str(SAMPLE / patch))
    _run(git, *_CLEAN, "commit", "-q", "-m", message)
    commit = git.commit("HEAD")
    assert commit is not None
    return commit


def _run(git: Git, *args: str) -> None:
    done = git.run(*args)
    if done.returncode != 0:
        raise UsageError(
            f"cannot build the sample repository in {git.repo}: {done.stderr.decode(errors='replace').strip()}"
        )


def _repository() -> dict[str, Any]:
    owner, name = REPO.split("/")
    return {
        "id": 7001,
        "name": name,
        "full_name": REPO,
        "private": True,
        "default_branch": BASE_BRANCH,
        "owner": {"login": owner, "id": 7000, "type": "Organization"},
        "html_url": f"https://github.com/{REPO}",
    }


def _envelope(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "repository": _repository(),
        "installation": {"id": INSTALLATION_ID},
        "sender": MAINTAINER,
    }


def pull_request_opened(sample: SampleRepo, number: int) -> dict[str, Any]:
    pull = {
        "number": number,
        "title": "Add seasonal discounts",
        "body": "Plums are 10% off this month.",
        "state": "open",
        "draft": False,
        "user": MAINTAINER,
        "changed_files": 2,
        "html_url": f"https://github.com/{REPO}/pull/{number}",
        "head": {"sha": sample.head, "ref": HEAD_BRANCH},
        "base": {"sha": sample.base, "ref": BASE_BRANCH},
    }
    return {**_envelope("opened"), "number": number, "pull_request": pull}


def comment_created(number: int, title: str, body: str, comment_id: int) -> dict[str, Any]:
    issue = {
        "number": number,
        "title": title,
        "state": "open",
        "user": MAINTAINER,
        "body": None,
        "html_url": f"https://github.com/{REPO}/issues/{number}",
    }
    comment = {
        "id": comment_id,
        "body": body,
        "user": MAINTAINER,
        "html_url": f"https://github.com/{REPO}/issues/{number}#issuecomment-{comment_id}",
    }
    return {**_envelope("created"), "issue": issue, "comment": comment}
