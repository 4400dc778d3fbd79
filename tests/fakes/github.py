"""A small fake GitHub REST server on loopback, for the real githubkit client.

    with FakeGitHub() as gh:
        settings = Settings(GITHUB_API_URL=gh.url, GITHUB_TOKEN="t")
        ...
        assert len(gh.comments) == 1

It is a real HTTP server (uvicorn in a background thread, Starlette app, port chosen
by the OS) answering with complete objects built from real webhook payloads, so
githubkit's response validation passes as it would against api.github.com. Only the
endpoints the edge uses are served; anything else is a 404 that names the route.

Knobs: `fail_next(method, path_regex, status, headers, body, times)` answers the next
matching request(s) with an error; `hold(method, path_regex)` / `release()` do the work
but keep the answer back; `set_permission(user, level)`; `valid_anchors` (None = every
inline review comment anchors; else a set of (path, line) that do); `token_ttl`;
`revoke_tokens()`; `add_reaction(repo, comment_id, content, user)` / `remove_reaction(id)` for
a person's reaction on a comment (listed by `GET …/comments/{id}/reactions`); `default_branch`
(of every repo, "main"); `rate_limit(remaining, reset, limit)` sends those `x-ratelimit-*`
headers with every answer. A file of the contents API
carries an ETag (its blob id) and is answered 304 to an `If-None-Match` naming it.

Reviews, as GitHub treats them: one without `event` is PENDING (kept in `reviews`, no
`submitted_at`) and may be deleted; a pull request holds at most one pending review (of
the one user the fake knows) and no review is created while it exists; any inline
comment outside `valid_anchors` fails the whole review with 422; a CHANGES_REQUESTED or
APPROVED review may be dismissed (state DISMISSED). `add_review(...)` leaves a submitted
review as someone else would.

Numbers: issues and pull requests share one sequence per repository, as on GitHub, so
two repositories each have an issue #1; `issues` is keyed by (repo, number). An object
is only found through its own repository's routes (another's answers 404).

Branches and pull requests: `branches` (repo → {branch: head sha}; a repo's default
branch appears on first use), `files` ((repo, ref, path) → bytes, where ref is a
branch name, a sha or "HEAD"; a new branch starts with the files of the ref it is
made from), `commits` (one entry per PUT of contents), `pulls` ((repo, number) → PR;
`pull_requests` lists them), `add_pull(...)` for a PR opened behind the publisher's
back, and `dispatches` (each workflow dispatch: repo, workflow, ref, inputs).

Registering an App from a manifest, as `waooaw setup` drives it: the web form
`POST /settings/apps/new` (or `/organizations/ORG/settings/apps/new`) with a `manifest`
field, as a signed-in user who confirms at once, redirects the browser to the manifest's
`redirect_url` with a code and the `state` it was given (`app_registrations` records each
post); `POST /app-manifests/{code}/conversions` trades a code once for the new App with its
secrets (`apps`, by id) and answers 404 after. Neither needs an Authorization header, nor
does `GET /users/{login}` (a user is public; `waooaw[bot]` is `bot`). The API is also served
under `/api/v3`, where a GitHub Enterprise Server has it.

The App's webhook deliveries, listed and redelivered: tests/fakes/hook_deliveries.py. What a
spec agent reads (an issue, trees, search, labels, releases, contributors, stargazers) and the
labels it sets: tests/fakes/github_reads.py.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import itertools
import json
import re
import secrets
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.github_reads import READ_ROUTES, RepoReads
from tests.fakes.hook_deliveries import HookDeliveries
from tests.fakes.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIRS = (ROOT / "tests" / "fixtures" / "webhooks", ROOT.parent / "shared" / "fixtures" / "webhooks")


def fixture_path(relpath: str) -> Path:
    """A real webhook payload: the repo's copy first, then ../shared."""
    for base in FIXTURE_DIRS:
        if (base / relpath).exists():
            return base / relpath
    raise FileNotFoundError(f"no webhook fixture {relpath} under {', '.join(map(str, FIXTURE_DIRS))}")


@functools.lru_cache(maxsize=1)
def app_private_key() -> str:
    """A throwaway RSA key (PEM) for App auth against the fake: it only decodes the JWT."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _load(relpath: str) -> dict[str, Any]:
    return json.loads(fixture_path(relpath).read_text())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def _blob_sha(content: bytes) -> str:
    """Git's blob id, as the contents API names a file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _retarget(template: dict[str, Any], repo: str) -> dict[str, Any]:
    """A deep copy of a fixture object whose URLs and names point at `repo` instead of the fixture's."""
    return json.loads(json.dumps(template).replace("Codertocat/Hello-World", repo))


LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
REVIEW_STATE = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "APPROVE": "APPROVED"}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str] = field(repr=False)
    status: int = 0
    form: dict[str, str] = field(default_factory=dict)  # a browser's form post (the App registration page)
    peer: str = ""  # the client's end of the TCP connection the call came over, host:port


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


class FakeGitHub(HookDeliveries, RepoReads):
    def __init__(self) -> None:
        self._templates = {
            "comment": _load("issue_comment/created.payload.json")["comment"],
            "issue": _load("issues/opened.payload.json")["issue"],
            "check_run": _load("check_run/created.payload.json")["check_run"],
            "review": _load("pull_request_review/submitted.payload.json")["review"],
            "user": _load("issues/opened.payload.json")["sender"],
            "pull_request": _load("pull_request/opened.payload.json")["pull_request"],
            "repository": _load("pull_request/opened.payload.json")["repository"],
            "release": _load("release/published.payload.json")["release"],
        }
        self.url = ""
        self._lock = threading.Lock()
        self.reset()
        self.bot = self.user("waooaw[bot]", 4242, type="Bot")
        self._server: LoopbackServer | None = None

    def reset(self) -> None:
        """Forget every request, object and knob (a server shared by several tests)."""
        self.requests: list[Call] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}  # (repo, number) → issue
        self.reviews: dict[int, dict[str, Any]] = {}
        self.review_comments: dict[int, list[dict[str, Any]]] = {}  # review id → inline comments
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.annotations: dict[int, list[dict[str, Any]]] = {}  # check run id → annotations (appended)
        self.reactions: list[dict[str, Any]] = []
        self.permissions: dict[str, str] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}  # (repo, number) → the pull request object
        self.pull_diffs: dict[tuple[str, int], str] = {}  # (repo, number) → unified diff
        self.pull_files: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (repo, number) → files API entries
        self.compare_diffs: dict[tuple[str, str, str], str] = {}  # (repo, base, head) → unified diff
        self.files: dict[tuple[str, str, str], bytes] = {}  # (repo, ref, path) → content
        self.default_branch = "main"
        self.branches: dict[str, dict[str, str]] = {}  # repo → {branch: head sha}
        self.commits: list[dict[str, Any]] = []  # each PUT of contents: repo, branch, path, message, sha, content
        self.dispatches: list[dict[str, Any]] = []  # each workflow dispatch: repo, workflow, ref, inputs
        self.app_registrations: list[dict[str, Any]] = []  # each manifest form post: org (or None), state, manifest
        self.apps: dict[int, dict[str, Any]] = {}  # App id → the App as its code's conversion answered it
        self._app_codes: dict[str, dict[str, Any]] = {}  # code not yet traded → {"manifest", "owner"}
        self.valid_anchors: set[tuple[str, int]] | None = None
        self.token_ttl = timedelta(hours=1)
        self.minted_tokens: list[str] = []
        self.jwt_claims: list[dict[str, Any]] = []
        self.token_apps: dict[str, int] = {}  # installation token → the App it was minted for
        self._revoked: set[str] = set()
        self._failures: list[_Failure] = []
        self._every_answer: dict[str, str] = {}  # headers sent with every answer (rate_limit)
        self._holds: list[tuple[str, re.Pattern[str]]] = []
        self._released = threading.Event()
        self._held_count = 0
        self._ids = itertools.count(1000)
        self._numbers: dict[str, itertools.count[int]] = {}  # repo → its issue and pull request numbers
        self._reset_hook_deliveries()
        self._reset_repo_reads()

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeGitHub:
        self._server = LoopbackServer("fake-github", self._endpoint, ["GET", "POST", "PATCH", "PUT", "DELETE"])
        self.url = self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.stop()

    # ------------------------------------------------------------ knobs

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests matching method and path (re.search) with `status`."""
        if body is None:
            body = {"message": f"fake failure {status}", "documentation_url": "https://docs.github.com/rest"}
        self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, headers or {}, body, times))

    def hold(self, method: str, path_regex: str) -> None:
        """Carry out matching requests but keep their answers back until `release()`.

        This is GitHub having done the work while the caller never hears of it: the
        window in which a worker can die after its side effect and before its record.
        """
        self._holds.append((method.upper(), re.compile(path_regex)))

    def release(self) -> None:
        self._holds.clear()
        self._released.set()

    @property
    def held(self) -> int:
        return self._held_count

    def rate_limit(self, remaining: int, reset: float, limit: int = 5000) -> None:
        """Tell every answer's `x-ratelimit-*` headers: this many calls left of `limit` until `reset` (epoch s)."""
        self._every_answer = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(int(reset)),
            "x-ratelimit-resource": "core",
        }

    def set_permission(self, user: str, level: str) -> None:
        assert level in LEGACY_PERMISSION, level
        self.permissions[user] = level

    def revoke_tokens(self) -> None:
        self._revoked.update(self.minted_tokens)

    @property
    def pull_requests(self) -> list[dict[str, Any]]:
        """Every pull request, seeded in `pulls` or opened through the API, in order."""
        return list(self.pulls.values())

    def calls(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex)
        return [c for c in self.requests if c.method == method.upper() and pattern.search(c.path)]

    # ------------------------------------------------------------ objects

    def _base(self, repo: str) -> str:
        return f"{self.url}/repos/{repo}"

    def user(self, login: str, id: int, type: str = "User") -> dict[str, Any]:
        obj = copy.deepcopy(self._templates["user"])
        for key, value in list(obj.items()):
            if isinstance(value, str):
                obj[key] = value.replace("Codertocat", login)
        obj.update(login=login, id=id, node_id=f"U_{id}", type=type)
        return obj

    def heads(self, repo: str) -> dict[str, str]:
        """The repo's branches; the default branch exists from the start."""
        return self.branches.setdefault(repo, {self.default_branch: _sha(f"{repo}@{self.default_branch}")})

    def repository(self, repo: str) -> dict[str, Any]:
        """The repo as GET /repos/{repo} answers it (a full repository)."""
        owner, name = repo.split("/")
        obj = _retarget(self._templates["repository"], repo)
        obj.update(
            id=zlib.crc32(repo.encode()),
            node_id=f"R_{name}",
            name=name,
            full_name=repo,
            owner=self.user(owner, zlib.crc32(owner.encode())),
            default_branch=self.default_branch,
            # in a full repository, not in webhook payloads
            has_discussions=False,
            subscribers_count=0,
            network_count=0,
            stargazers_count=len(self.stargazers.get(repo, [])),
        )
        return obj

    def _git_ref(self, repo: str, branch: str) -> dict[str, Any]:
        sha = self.heads(repo)[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{zlib.crc32(f'{repo}:{branch}'.encode())}",
            "url": f"{self._base(repo)}/git/refs/heads/{branch}",
            "object": {"type": "commit", "sha": sha, "url": f"{self._base(repo)}/git/commits/{sha}"},
        }

    def _branch_end(self, repo: str, branch: str) -> dict[str, Any]:
        """`head` or `base` of a pull request."""
        repository = self.repository(repo)
        return {
            "label": f"{repo.split('/')[0]}:{branch}",
            "ref": branch,
            "sha": self.heads(repo)[branch],
            "user": repository["owner"],
            "repo": repository,
        }

    def add_pull(self, repo: str, branch: str, base: str, title: str, body: str | None) -> dict[str, Any]:
        """An open pull request from `branch` into `base` (tests use it to set up a crash window)."""
        number, id = self._number(repo), next(self._ids)
        heads = self.heads(repo)
        heads.setdefault(branch, heads[base])
        obj = _retarget(self._templates["pull_request"], repo)
        url, issue = f"{self._base(repo)}/pulls/{number}", f"{self._base(repo)}/issues/{number}"
        html = f"https://github.com/{repo}/pull/{number}"
        statuses = f"{self._base(repo)}/statuses/{heads[branch]}"
        obj.update(
            id=id,
            node_id=f"PR_{id}",
            number=number,
            title=title,
            body=body,
            user=self.bot,
            state="open",
            url=url,
            html_url=html,
            diff_url=f"{html}.diff",
            patch_url=f"{html}.patch",
            issue_url=issue,
            commits_url=f"{url}/commits",
            review_comments_url=f"{url}/comments",
            comments_url=f"{issue}/comments",
            statuses_url=statuses,
            labels=[],
            assignee=None,
            assignees=[],
            requested_reviewers=[],
            requested_teams=[],
            milestone=None,
            created_at=_now(),
            updated_at=_now(),
            closed_at=None,
            merged_at=None,
            merge_commit_sha=None,
            draft=False,
            merged=False,
            mergeable=None,
            merged_by=None,
            comments=0,
            review_comments=0,
            head=self._branch_end(repo, branch),
            base=self._branch_end(repo, base),
        )
        obj["_links"].update(
            self={"href": url},
            html={"href": html},
            issue={"href": issue},
            comments={"href": f"{issue}/comments"},
            review_comments={"href": f"{url}/comments"},
            commits={"href": f"{url}/commits"},
            statuses={"href": statuses},
        )
        self.pulls[(repo, number)] = obj
        return obj

    def merge_pull(self, repo: str, number: int, merged_at: datetime | None = None) -> str:
        """Merge an open pull request as its Merge button does (at `merged_at`, default now): the files
        of its branch land on its base, whose head moves on; returns the base's new head SHA (a test
        then delivers the push)."""
        pull = self.pulls[(repo, number)]
        branch, base = pull["head"]["ref"], pull["base"]["ref"]
        for (name, ref, path), content in list(self.files.items()):
            if name == repo and ref == branch:
                self.files[(repo, base, path)] = content
        heads = self.heads(repo)
        heads[base] = _sha(f"{repo}:{base}:merge of #{number}")
        stamp = (merged_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pull.update(
            state="closed",
            merged=True,
            merged_at=stamp,
            closed_at=stamp,
            updated_at=stamp,
            merge_commit_sha=heads[base],
        )
        return heads[base]

    def add_comment(
        self, repo: str, issue_number: int, body: str, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A comment as GitHub holds it (tests use it to set up a crash window)."""
        id = next(self._ids)
        obj = copy.deepcopy(self._templates["comment"])
        obj.update(
            id=id,
            node_id=f"IC_{id}",
            body=body,
            user=user or self.bot,
            url=f"{self._base(repo)}/issues/comments/{id}",
            html_url=f"https://github.com/{repo}/issues/{issue_number}#issuecomment-{id}",
            issue_url=f"{self._base(repo)}/issues/{issue_number}",
            created_at=_now(),
            updated_at=_now(),
        )
        obj["reactions"]["url"] = f"{obj['url']}/reactions"
        self.comments[id] = obj
        return obj

    def rename_repo(self, old: str, new: str) -> None:
        """The repository `old` is `new` from now on (renamed or transferred): its comments' addresses say so."""
        for comment in self.comments.values():
            for address in ("url", "html_url", "issue_url"):
                comment[address] = comment[address].replace(f"/{old}/", f"/{new}/")

    def add_review(
        self, repo: str, pr: int, body: str, event: str, commit_id: str, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A submitted review (tests use it for a review someone else left)."""
        review = self._review(repo, pr, {"body": body, "event": event, "commit_id": commit_id})
        review["user"] = user or self.user("octocat", 583231)
        self.reviews[review["id"]], self.review_comments[review["id"]] = review, []
        return review

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str | None,
        labels: Sequence[str] = (),
        state: str = "open",
        user: dict[str, Any] | None = None,
        updated_at: str | None = None,
    ) -> dict[str, Any]:
        """An issue; `updated_at` (`2025-01-01T00:00:00Z`) for one untouched since then."""
        number, id = self._number(repo), next(self._ids)
        obj = copy.deepcopy(self._templates["issue"])
        url = f"{self._base(repo)}/issues/{number}"
        obj.update(
            id=id,
            node_id=f"I_{id}",
            number=number,
            title=title,
            body=body,
            user=user or self.bot,
            url=url,
            repository_url=self._base(repo),
            labels_url=f"{url}/labels{{/name}}",
            comments_url=f"{url}/comments",
            events_url=f"{url}/events",
            html_url=f"https://github.com/{repo}/issues/{number}",
            assignee=None,
            assignees=[],
            milestone=None,
            comments=0,
            created_at=updated_at or _now(),
            updated_at=updated_at or _now(),
            closed_at=None,
        )
        obj["labels"] = [self._label(repo, name) for name in labels]
        self._set_state(obj, state)
        self.issues[(repo, number)] = obj
        return obj

    def _number(self, repo: str) -> int:
        return next(self._numbers.setdefault(repo, itertools.count(1)))

    def _label(self, repo: str, name: str) -> dict[str, Any]:
        return {
            "id": zlib.crc32(f"{repo}:{name}".encode()),
            "node_id": f"LA_{name}",
            "url": f"{self._base(repo)}/labels/{name}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
            "archived_at": None,  # in today's label objects, not in older payloads
            "archived_by": None,
        }

    @staticmethod
    def _set_state(issue: dict[str, Any], state: str) -> None:
        issue["state"] = state
        issue["closed_at"] = _now() if state == "closed" else None
        issue["state_reason"] = "completed" if state == "closed" else None

    def _review(self, repo: str, pr: int, body: dict[str, Any]) -> dict[str, Any]:
        id = next(self._ids)
        obj = copy.deepcopy(self._templates["review"])
        html = f"https://github.com/{repo}/pull/{pr}#pullrequestreview-{id}"
        obj.update(
            id=id,
            node_id=f"PRR_{id}",
            user=self.bot,
            body=body.get("body") or "",
            commit_id=body.get("commit_id") or obj["commit_id"],
            state=REVIEW_STATE.get(body.get("event") or "", "PENDING"),
            submitted_at=_now(),
            html_url=html,
            pull_request_url=f"{self._base(repo)}/pulls/{pr}",
            _links={"html": {"href": html}, "pull_request": {"href": f"{self._base(repo)}/pulls/{pr}"}},
        )
        if obj["state"] == "PENDING":
            del obj["submitted_at"]  # GitHub leaves it out until the review is submitted
        return obj

    def add_check_run(self, repo: str, body: dict[str, Any], *, app_id: int) -> dict[str, Any]:
        """A check run as the App `app_id` created it (tests use it for another App's run)."""
        run = self._check_run(repo, body)
        run["app"] = {**run["app"], "id": app_id}
        self._apply_check_run(run, body)
        self.check_runs[run["id"]] = run
        return run

    def _check_run(self, repo: str, body: dict[str, Any]) -> dict[str, Any]:
        id = next(self._ids)
        obj = copy.deepcopy(self._templates["check_run"])
        obj.update(
            id=id,
            node_id=f"CR_{id}",
            name=body["name"],
            head_sha=body["head_sha"],
            external_id=body.get("external_id", ""),
            details_url=body.get("details_url"),
            url=f"{self._base(repo)}/check-runs/{id}",
            html_url=f"https://github.com/{repo}/runs/{id}",
            status="queued",
            conclusion=None,
            started_at=_now(),
            completed_at=None,
            pull_requests=[],
        )
        obj["output"] = {
            "title": None,
            "summary": None,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{obj['url']}/annotations",
        }
        self.annotations[id] = []
        return obj

    def _apply_check_run(self, obj: dict[str, Any], body: dict[str, Any]) -> None:
        output = body.get("output") or {}
        for key in ("title", "summary", "text"):
            if key in output:
                obj["output"][key] = output[key]
        self.annotations[obj["id"]].extend(output.get("annotations") or [])
        obj["output"]["annotations_count"] = len(self.annotations[obj["id"]])
        for key in ("name", "external_id", "details_url"):
            if key in body:
                obj[key] = body[key]
        if "conclusion" in body and body["conclusion"] is not None:
            obj["status"], obj["conclusion"] = "completed", body["conclusion"]
        elif "status" in body:
            obj["status"] = body["status"]
        if obj["status"] == "completed" and obj["completed_at"] is None:
            obj["completed_at"] = _now()

    # ------------------------------------------------------------ HTTP

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        call = Call(
            request.method,
            "/" + request.path_params["path"],
            dict(request.query_params),
            payload,
            {k.lower(): v for k, v in request.headers.items()},
            peer=f"{request.client.host}:{request.client.port}" if request.client is not None else "",
        )
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            call.form = dict(parse_qsl(raw.decode()))
        with self._lock:
            self.requests.append(call)
            status, body, headers = self._dispatch(call, str(request.url))
            headers = self._every_answer | headers
        call.status = status
        if any(method == call.method and pattern.search(call.path) for method, pattern in self._holds):
            with self._lock:
                self._held_count += 1
            await asyncio.get_running_loop().run_in_executor(None, self._released.wait)
        if body is None:
            return Response(status_code=status, headers=headers)
        if isinstance(body, str):  # a diff, as GitHub sends for Accept: application/vnd.github.diff
            return Response(body, status_code=status, headers=headers, media_type="text/x-diff")
        return JSONResponse(body, status_code=status, headers=headers)

    def _dispatch(self, call: Call, full_url: str) -> tuple[int, Any, dict[str, str]]:
        for failure in self._failures:
            if failure.times > 0 and failure.method == call.method and failure.path.search(call.path):
                failure.times -= 1
                return failure.status, failure.body, failure.headers
        path = call.path.removeprefix("/api/v3")
        answer = self._route(PUBLIC_ROUTES, call, path, full_url)
        if answer is not None:
            return answer
        authorization = call.headers.get("authorization", "")
        if not authorization:
            return 401, {"message": "Requires authentication"}, {}
        if authorization.removeprefix("token ") in self._revoked:
            return 401, {"message": "Bad credentials"}, {}
        answer = self._route(ROUTES, call, path, full_url)
        if answer is not None:
            return answer
        return 404, {"message": f"fake GitHub does not serve {call.method} {call.path}"}, {}

    def _route(
        self, routes: list[tuple[str, str, str]], call: Call, path: str, full_url: str
    ) -> tuple[int, Any, dict[str, str]] | None:
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and method == call.method:
                return getattr(self, handler)(call, full_url, **match.groupdict())
        return None

    @staticmethod
    def _page(call: Call, full_url: str, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = int(call.query.get("per_page", 30))
        page = int(call.query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            base, _, query = full_url.partition("?")
            params = {k: v[-1] for k, v in parse_qs(query).items()} | {"page": str(page + 1), "per_page": str(per_page)}
            headers["link"] = f'<{base}?{urlencode(params)}>; rel="next"'
        return 200, chunk, headers

    # ------------------------------------------------------------ routes

    @staticmethod
    def _app_claims(call: Call) -> dict[str, Any] | None:
        """The claims of the App JWT the call carries (not verified: the fake only reads them), or None."""
        import jwt

        authorization = call.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return None
        return jwt.decode(authorization[7:], options={"verify_signature": False})

    def mint_token(self, call: Call, url: str, installation: str) -> tuple[int, Any, dict[str, str]]:
        claims = self._app_claims(call)
        if claims is None:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        self.jwt_claims.append(claims)
        token = f"ghs_fake{installation}x{len(self.minted_tokens) + 1}"
        self.minted_tokens.append(token)
        self.token_apps[token] = int(claims["iss"])
        expires = (datetime.now(UTC) + self.token_ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            201,
            {"token": token, "expires_at": expires, "permissions": {"issues": "write"}, "repository_selection": "all"},
            {},
        )

    def list_comments(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        issue_url = f"{self._base(repo)}/issues/{number}"
        return self._page(call, url, [c for c in self.comments.values() if c["issue_url"] == issue_url])

    def get_app(self, call: Call, url: str) -> tuple[int, Any, dict[str, str]]:
        claims = self._app_claims(call)
        if claims is None:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        return 200, {"id": int(claims["iss"]), "slug": self.bot["login"].removesuffix("[bot]"), "name": "WAOOAW"}, {}

    def get_user(self, call: Call, url: str, user: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self.bot if user == self.bot["login"] else self.user(user, 10_000 + len(user)), {}

    def get_authenticated_user(self, call: Call, url: str) -> tuple[int, Any, dict[str, str]]:
        if call.headers.get("authorization", "").startswith("token ghs_"):  # an installation token, as on Actions
            return 403, {"message": "Resource not accessible by integration"}, {}
        return 200, self.bot, {}  # the token's owner: what it creates is authored by the bot here

    def create_comment(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return 201, self.add_comment(repo, int(number), call.json["body"]), {}

    def update_comment(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        comment = self.comments.get(int(id))
        if comment is None or not comment["url"].startswith(self._base(repo) + "/"):
            return 404, {"message": "Not Found"}, {}
        comment.update(body=call.json["body"], updated_at=_now())
        return 200, comment, {}

    def react(self, call: Call, url: str, repo: str, target: str, id: str) -> tuple[int, Any, dict[str, str]]:
        key = (repo, target, int(id), call.json["content"])
        for reaction in self.reactions:
            if reaction["_key"] == key:
                return 200, {k: v for k, v in reaction.items() if k != "_key"}, {}
        reaction_id = next(self._ids)
        reaction = {
            "id": reaction_id,
            "node_id": f"REA_{reaction_id}",
            "user": self.bot,
            "content": call.json["content"],
            "created_at": _now(),
            "_key": key,
        }
        self.reactions.append(reaction)
        return 201, {k: v for k, v in reaction.items() if k != "_key"}, {}

    def add_reaction(self, repo: str, comment_id: int, content: str, user: dict[str, Any]) -> dict[str, Any]:
        """A reaction someone left on a comment (GitHub sends no webhook for it)."""
        reaction_id = next(self._ids)
        reaction = {
            "id": reaction_id,
            "node_id": f"REA_{reaction_id}",
            "user": user,
            "content": content,
            "created_at": _now(),
            "_key": (repo, "comment", comment_id, content, user["id"]),
        }
        self.reactions.append(reaction)
        return reaction

    def remove_reaction(self, reaction_id: int) -> None:
        self.reactions = [r for r in self.reactions if r["id"] != reaction_id]

    def list_comment_reactions(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        comment = self.comments.get(int(id))
        if comment is None or not comment["url"].startswith(self._base(repo) + "/"):
            return 404, {"message": "Not Found"}, {}
        on_it = [r for r in self.reactions if r["_key"][:3] == (repo, "comment", int(id))]
        mine = [{k: v for k, v in r.items() if k != "_key"} for r in on_it]
        return self._page(call, url, mine)

    def react_comment(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        return self.react(call, url, repo, "comment", id)

    def react_issue(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return self.react(call, url, repo, "issue", number)

    def list_issues(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        state = call.query.get("state", "open")
        wanted = [name for name in call.query.get("labels", "").split(",") if name]
        items = [
            i
            for (r, _), i in self.issues.items()
            if r == repo
            and (state == "all" or i["state"] == state)
            and all(name in {label["name"] for label in i["labels"]} for name in wanted)
        ]
        items.sort(key=lambda i: i["number"], reverse=call.query.get("direction", "desc") == "desc")
        return self._page(call, url, items)

    def create_issue(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        body = call.json
        labels = [label if isinstance(label, str) else label["name"] for label in body.get("labels") or []]
        return 201, self.add_issue(repo, str(body["title"]), body.get("body"), labels), {}

    def update_issue(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        issue = self.issues.get((repo, int(number)))
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        body = call.json
        for key in ("title", "body"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            issue["labels"] = [self._label(repo, n if isinstance(n, str) else n["name"]) for n in body["labels"]]
        if "state" in body:
            self._set_state(issue, body["state"])
        if body.get("state_reason") and issue["state"] == "closed":
            issue["state_reason"] = body["state_reason"]
        issue["updated_at"] = _now()
        return 200, issue, {}

    def list_reviews(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        pr_url = f"{self._base(repo)}/pulls/{number}"
        return self._page(call, url, [r for r in self.reviews.values() if r["pull_request_url"] == pr_url])

    def create_review(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        comments = call.json.get("comments") or []
        docs = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
        if self.valid_anchors is not None:
            bad = [c for c in comments if (c["path"], c.get("line")) not in self.valid_anchors]
            if bad:
                return (
                    422,
                    {
                        "message": "Unprocessable Entity",
                        "errors": ["Line could not be resolved"],
                        "documentation_url": docs,
                    },
                    {},
                )
        if self._pending_review(repo, number) is not None:
            return (
                422,
                {
                    "message": "Unprocessable Entity",
                    "errors": ["User can only have one pending review per pull request"],
                    "documentation_url": docs,
                },
                {},
            )
        review = self._review(repo, int(number), call.json)
        self.reviews[review["id"]], self.review_comments[review["id"]] = review, comments
        return 200, review, {}

    def _pending_review(self, repo: str, number: str) -> dict[str, Any] | None:
        pr_url = f"{self._base(repo)}/pulls/{number}"
        return next(
            (r for r in self.reviews.values() if r["pull_request_url"] == pr_url and r["state"] == "PENDING"), None
        )

    def _review_of(self, repo: str, number: str, id: str) -> dict[str, Any] | None:
        review = self.reviews.get(int(id))
        return (
            review
            if review is not None and review["pull_request_url"] == f"{self._base(repo)}/pulls/{number}"
            else None
        )

    def delete_review(self, call: Call, url: str, repo: str, number: str, id: str) -> tuple[int, Any, dict[str, str]]:
        review = self._review_of(repo, number, id)
        if review is None:
            return 404, {"message": "Not Found"}, {}
        if review["state"] != "PENDING":
            return (
                422,
                {"message": "Unprocessable Entity", "errors": ["Can not delete a non-pending pull request review"]},
                {},
            )
        del self.reviews[review["id"]], self.review_comments[review["id"]]
        return 200, review, {}

    def dismiss_review(self, call: Call, url: str, repo: str, number: str, id: str) -> tuple[int, Any, dict[str, str]]:
        review = self._review_of(repo, number, id)
        if review is None:
            return 404, {"message": "Not Found"}, {}
        if not call.json.get("message"):
            return 422, {"message": 'Invalid request.\n\n"message" wasn\'t supplied.'}, {}
        if review["state"] not in ("CHANGES_REQUESTED", "APPROVED"):
            state = review["state"].lower().replace("_", " ")
            return (
                422,
                {"message": "Unprocessable Entity", "errors": [f"Can not dismiss a {state} pull request review"]},
                {},
            )
        review["state"] = "DISMISSED"
        return 200, review, {}

    def create_check_run(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        if len((call.json.get("output") or {}).get("annotations") or []) > 50:
            return 422, {"message": "Only 50 annotations per request"}, {}
        token = call.headers.get("authorization", "").removeprefix("token ")
        return 201, self.add_check_run(repo, call.json, app_id=self.token_apps.get(token, ACTIONS_APP_ID)), {}

    def update_check_run(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        run = self.check_runs.get(int(id))
        if run is None or not run["url"].startswith(self._base(repo) + "/"):
            return 404, {"message": "Not Found"}, {}
        if len((call.json.get("output") or {}).get("annotations") or []) > 50:
            return 422, {"message": "Only 50 annotations per request"}, {}
        self._apply_check_run(run, call.json)
        return 200, run, {}

    def list_check_runs(self, call: Call, url: str, repo: str, ref: str) -> tuple[int, Any, dict[str, str]]:
        runs = [
            r
            for r in self.check_runs.values()
            if r["head_sha"] == ref
            and r["url"].startswith(self._base(repo) + "/")
            and r["name"] == call.query.get("check_name", r["name"])
            and ("app_id" not in call.query or r["app"]["id"] == int(call.query["app_id"]))
        ]
        return 200, {"total_count": len(runs), "check_runs": runs}, {}

    def get_pull_diff(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        if "diff" not in call.headers.get("accept", ""):
            pull = self.pulls.get((repo, int(number)))
            return (200, pull, {}) if pull is not None else (404, {"message": "Not Found"}, {})
        diff = self.pull_diffs.get((repo, int(number)))
        return (200, diff, {}) if diff is not None else (404, {"message": "Not Found"}, {})

    def list_pull_files(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return self._page(call, url, self.pull_files.get((repo, int(number)), []))

    def get_compare_diff(
        self, call: Call, url: str, repo: str, base: str, head: str
    ) -> tuple[int, Any, dict[str, str]]:
        diff = self.compare_diffs.get((repo, base, head))
        if diff is None or "diff" not in call.headers.get("accept", ""):
            return 404, {"message": "Not Found"}, {}
        return 200, diff, {}

    def get_contents(self, call: Call, url: str, repo: str, path: str) -> tuple[int, Any, dict[str, str]]:
        ref = call.query.get("ref", "HEAD")  # a sha, a branch name or "HEAD"
        content = self.files.get((repo, ref, path))
        if content is None and ref == "HEAD":  # GitHub's HEAD is the default branch
            content = self.files.get((repo, self.default_branch, path))
        if content is None:
            return 404, {"message": "Not Found"}, {}
        etag = f'W/"{_blob_sha(content)}"'
        if call.headers.get("if-none-match") == etag:
            return 304, None, {"etag": etag}
        return (
            200,
            self._content(repo, ref, path, content)
            | {
                "type": "file",
                "encoding": "base64",
                "content": base64.b64encode(content).decode(),
            },
            {"etag": etag},
        )

    def _content(self, repo: str, ref: str, path: str, content: bytes) -> dict[str, Any]:
        url = f"{self._base(repo)}/contents/{path}?ref={ref}"
        sha = _blob_sha(content)
        html = f"https://github.com/{repo}/blob/{ref}/{path}"
        git = f"{self._base(repo)}/git/blobs/{sha}"
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": len(content),
            "url": url,
            "html_url": html,
            "git_url": git,
            "download_url": f"https://raw.githubusercontent.com/{repo}/{ref}/{path}",
            "type": "file",
            "_links": {"self": url, "git": git, "html": html},
        }

    def put_contents(self, call: Call, url: str, repo: str, path: str) -> tuple[int, Any, dict[str, str]]:
        body = call.json
        heads = self.heads(repo)
        branch = body.get("branch") or self.default_branch
        if branch not in heads:
            return 404, {"message": f"Branch {branch} not found"}, {}
        current = self.files.get((repo, branch, path))
        if current is not None and "sha" not in body:
            return 422, {"message": 'Invalid request.\n\n"sha" wasn\'t supplied.'}, {}
        if current is not None and body["sha"] != _blob_sha(current):
            return 409, {"message": f"{path} does not match {body['sha']}"}, {}
        content = base64.b64decode(body["content"])
        parent, sha = heads[branch], _sha(f"{repo}:{branch}:{len(self.commits)}:{path}")
        self.files[(repo, branch, path)] = content
        heads[branch] = sha
        self.commits.append(
            {"repo": repo, "branch": branch, "path": path, "message": body["message"], "sha": sha, "content": content}
        )
        commit_url = f"{self._base(repo)}/git/commits/{sha}"
        person = {"name": "waooaw[bot]", "email": "waooaw[bot]@users.noreply.github.com", "date": _now()}
        commit = {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": commit_url,
            "html_url": f"https://github.com/{repo}/commit/{sha}",
            "author": person,
            "committer": person,
            "message": body["message"],
            "tree": {"sha": _sha(f"tree:{sha}"), "url": f"{self._base(repo)}/git/trees/{_sha(f'tree:{sha}')}"},
            "parents": [
                {
                    "sha": parent,
                    "url": f"{self._base(repo)}/git/commits/{parent}",
                    "html_url": f"https://github.com/{repo}/commit/{parent}",
                }
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }
        return (
            (201 if current is None else 200),
            {"content": self._content(repo, branch, path, content), "commit": commit},
            {},
        )

    def get_repo(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self.repository(repo), {}

    def get_ref(self, call: Call, url: str, repo: str, branch: str) -> tuple[int, Any, dict[str, str]]:
        if branch not in self.heads(repo):
            return (
                404,
                {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/git/refs#get-a-reference"},
                {},
            )
        return 200, self._git_ref(repo, branch), {}

    def create_ref(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        ref, sha = call.json["ref"], call.json["sha"]
        heads = self.heads(repo)
        branch = ref.removeprefix("refs/heads/")
        if branch == ref or not branch:
            return 422, {"message": f"Reference name {ref!r} is not supported by the fake"}, {}
        if branch in heads:
            return 422, {"message": "Reference already exists"}, {}
        sources = {sha} | {name for name, head in heads.items() if head == sha}
        for (r, source, path), content in list(self.files.items()):
            if r == repo and source in sources:
                self.files[(repo, branch, path)] = content
        heads[branch] = sha
        return 201, self._git_ref(repo, branch), {}

    def list_pulls(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        state, head, base = call.query.get("state", "open"), call.query.get("head"), call.query.get("base")
        items = [
            p
            for (r, _), p in self.pulls.items()
            if r == repo
            and state in ("all", p["state"])
            and head in (None, p["head"]["label"])
            and base in (None, p["base"]["ref"])
        ]
        if call.query.get("sort") in ("created", "updated"):
            stamp = f"{call.query['sort']}_at"
            items.sort(key=lambda p: (p[stamp], p["number"]), reverse=call.query.get("direction", "desc") == "desc")
        return self._page(call, url, items)

    def create_pull(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        body = call.json
        branch = body["head"].rpartition(":")[2]
        heads = self.heads(repo)
        invalid = [field for field, name in (("head", branch), ("base", body["base"])) if name not in heads]
        if invalid:
            return (
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": f, "code": "invalid"} for f in invalid],
                },
                {},
            )
        label = f"{repo.split('/')[0]}:{branch}"
        if any(
            p["state"] == "open" and p["head"]["label"] == label and p["base"]["ref"] == body["base"]
            for (r, _), p in self.pulls.items()
            if r == repo
        ):
            return (
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {label}.",
                        }
                    ],
                },
                {},
            )
        return 201, self.add_pull(repo, branch, body["base"], body["title"], body.get("body")), {}

    def update_pull(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        pull = self.pulls.get((repo, int(number)))
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        for key in ("title", "body", "state"):
            if key in call.json:
                pull[key] = call.json[key]
        if "base" in call.json:
            pull["base"] = self._branch_end(repo, call.json["base"])
        pull["updated_at"] = _now()
        return 200, pull, {}

    def dispatch_workflow(self, call: Call, url: str, repo: str, workflow: str) -> tuple[int, Any, dict[str, str]]:
        ref = call.json.get("ref")
        if not ref:
            return 422, {"message": 'Invalid request.\n\n"ref" wasn\'t supplied.'}, {}
        if ref.removeprefix("refs/heads/") not in self.heads(repo):
            return 422, {"message": f"No ref found for: {ref}"}, {}
        self.dispatches.append(
            {"repo": repo, "workflow": workflow, "ref": ref, "inputs": call.json.get("inputs") or {}}
        )
        return 204, None, {}

    def register_app(self, call: Call, url: str, org: str | None = None) -> tuple[int, Any, dict[str, str]]:
        """The web form: GitHub shows the manifest's App to the signed-in user, who creates it; the
        browser goes back to `redirect_url` with a one-time code and the state it came with."""
        try:
            manifest = json.loads(call.form.get("manifest", ""))
        except ValueError:
            return 422, {"message": "The manifest is not valid JSON"}, {}
        missing = [key for key in ("url", "redirect_url") if not manifest.get(key)]
        missing += [] if (manifest.get("hook_attributes") or {}).get("url") else ["hook_attributes.url"]
        if missing:
            return 422, {"message": f"The manifest lacks {', '.join(missing)}"}, {}
        owner = self.user(org, zlib.crc32(org.encode()), type="Organization") if org else self._templates["user"]
        code = secrets.token_hex(10)
        self._app_codes[code] = {"manifest": manifest, "owner": copy.deepcopy(owner)}
        self.app_registrations.append({"org": org, "state": call.query.get("state"), "manifest": manifest})
        back = {"code": code} | ({"state": call.query["state"]} if "state" in call.query else {})
        return 302, None, {"location": f"{manifest['redirect_url']}?{urlencode(back)}"}

    def convert_app_manifest(self, call: Call, url: str, code: str) -> tuple[int, Any, dict[str, str]]:
        pending = self._app_codes.pop(code, None)
        if pending is None:  # used already, or never given: GitHub does not say which
            return (
                404,
                {
                    "message": "Not Found",
                    "status": "404",
                    "documentation_url": "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest",
                },
                {},
            )
        manifest, id = pending["manifest"], next(self._ids)
        name = manifest.get("name") or f"app-{id}"
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        app = {
            "id": id,
            "slug": slug,
            "node_id": f"A_{id}",
            "client_id": f"Iv23li{id:014x}",
            "owner": pending["owner"],
            "name": name,
            "description": manifest.get("description"),
            "external_url": manifest["url"],
            "html_url": f"https://github.com/apps/{slug}",
            "created_at": _now(),
            "updated_at": _now(),
            "permissions": manifest.get("default_permissions") or {},
            "events": manifest.get("default_events") or [],
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": app_private_key(),
        }
        self.apps[id] = app
        return 201, app, {}

    def get_permission(self, call: Call, url: str, repo: str, user: str) -> tuple[int, Any, dict[str, str]]:
        level = self.permissions.get(user)
        if level is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        flags = {
            "admin": level == "admin",
            "maintain": level in ("admin", "maintain"),
            "push": level in ("admin", "maintain", "write"),
            "triage": level in ("admin", "maintain", "write", "triage"),
            "pull": level != "none",
        }
        collaborator = self.user(user, 10_000 + len(user)) | {"permissions": flags, "role_name": level}
        return 200, {"permission": LEGACY_PERMISSION[level], "role_name": level, "user": collaborator}, {}


ACTIONS_APP_ID = 15368  # GitHub Actions: the App behind a workflow's own token
# What a browser or an unauthenticated client reaches: the App registration form, the code's trade, a user.
PUBLIC_ROUTES: list[tuple[str, str, str]] = [
    ("POST", r"/settings/apps/new", "register_app"),
    ("POST", r"/organizations/(?P<org>[^/]+)/settings/apps/new", "register_app"),
    ("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", "convert_app_manifest"),
    ("GET", r"/users/(?P<user>[^/]+)", "get_user"),
]
_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
ROUTES: list[tuple[str, str, str]] = [
    ("POST", r"/app/installations/(?P<installation>\d+)/access_tokens", "mint_token"),
    ("GET", r"/app", "get_app"),
    ("GET", r"/app/hook/deliveries", "list_hook_deliveries"),
    ("POST", r"/app/hook/deliveries/(?P<id>\d+)/attempts", "redeliver_hook_delivery"),
    ("GET", r"/user", "get_authenticated_user"),
    ("GET", _REPO + r"/issues/(?P<number>\d+)/comments", "list_comments"),
    ("POST", _REPO + r"/issues/(?P<number>\d+)/comments", "create_comment"),
    ("PATCH", _REPO + r"/issues/comments/(?P<id>\d+)", "update_comment"),
    ("POST", _REPO + r"/issues/comments/(?P<id>\d+)/reactions", "react_comment"),
    ("GET", _REPO + r"/issues/comments/(?P<id>\d+)/reactions", "list_comment_reactions"),
    ("POST", _REPO + r"/issues/(?P<number>\d+)/reactions", "react_issue"),
    ("GET", _REPO + r"/issues", "list_issues"),
    ("POST", _REPO + r"/issues", "create_issue"),
    ("PATCH", _REPO + r"/issues/(?P<number>\d+)", "update_issue"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)/reviews", "list_reviews"),
    ("POST", _REPO + r"/pulls/(?P<number>\d+)/reviews", "create_review"),
    ("DELETE", _REPO + r"/pulls/(?P<number>\d+)/reviews/(?P<id>\d+)", "delete_review"),
    ("PUT", _REPO + r"/pulls/(?P<number>\d+)/reviews/(?P<id>\d+)/dismissals", "dismiss_review"),
    ("POST", _REPO + r"/check-runs", "create_check_run"),
    ("PATCH", _REPO + r"/check-runs/(?P<id>\d+)", "update_check_run"),
    ("GET", _REPO + r"/commits/(?P<ref>[^/]+)/check-runs", "list_check_runs"),
    ("GET", _REPO + r"/collaborators/(?P<user>[^/]+)/permission", "get_permission"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)", "get_pull_diff"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)/files", "list_pull_files"),
    ("GET", _REPO + r"/compare/(?P<base>[^/]+)\.\.\.(?P<head>[^/]+)", "get_compare_diff"),
    ("GET", _REPO + r"/contents/(?P<path>.+)", "get_contents"),
    ("PUT", _REPO + r"/contents/(?P<path>.+)", "put_contents"),
    ("GET", _REPO, "get_repo"),
    ("GET", _REPO + r"/git/ref/heads/(?P<branch>.+)", "get_ref"),
    ("POST", _REPO + r"/git/refs", "create_ref"),
    ("GET", _REPO + r"/pulls", "list_pulls"),
    ("POST", _REPO + r"/pulls", "create_pull"),
    ("PATCH", _REPO + r"/pulls/(?P<number>\d+)", "update_pull"),
    ("POST", _REPO + r"/actions/workflows/(?P<workflow>[^/]+)/dispatches", "dispatch_workflow"),
    *READ_ROUTES,
]
