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
matching request(s) with an error; `set_permission(user, level)`; `valid_anchors`
(None = every inline review comment anchors; else a set of (path, line) that do);
`token_ttl`; `revoke_tokens()`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import copy
import functools
import itertools
import json
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none"}
REVIEW_STATE = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "APPROVE": "APPROVED"}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str] = field(repr=False)
    status: int = 0


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


class FakeGitHub:
    def __init__(self) -> None:
        self._templates = {
            "comment": _load("issue_comment/created.payload.json")["comment"],
            "issue": _load("issues/opened.payload.json")["issue"],
            "check_run": _load("check_run/created.payload.json")["check_run"],
            "review": _load("pull_request_review/submitted.payload.json")["review"],
            "user": _load("issues/opened.payload.json")["sender"],
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
        self.issues: dict[int, dict[str, Any]] = {}  # by number (one sequence for every repo)
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
        self.valid_anchors: set[tuple[str, int]] | None = None
        self.token_ttl = timedelta(hours=1)
        self.minted_tokens: list[str] = []
        self.jwt_claims: list[dict[str, Any]] = []
        self._revoked: set[str] = set()
        self._failures: list[_Failure] = []
        self._holds: list[tuple[str, re.Pattern[str]]] = []
        self._released = threading.Event()
        self._held_count = 0
        self._ids = itertools.count(1000)
        self._numbers = itertools.count(1)

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

    def set_permission(self, user: str, level: str) -> None:
        assert level in LEGACY_PERMISSION, level
        self.permissions[user] = level

    def revoke_tokens(self) -> None:
        self._revoked.update(self.minted_tokens)

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

    def add_comment(self, repo: str, issue_number: int, body: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
        """A comment as GitHub holds it (tests use it to set up a crash window)."""
        id = next(self._ids)
        obj = copy.deepcopy(self._templates["comment"])
        obj.update(
            id=id, node_id=f"IC_{id}", body=body, user=user or self.bot,
            url=f"{self._base(repo)}/issues/comments/{id}",
            html_url=f"https://github.com/{repo}/issues/{issue_number}#issuecomment-{id}",
            issue_url=f"{self._base(repo)}/issues/{issue_number}",
            created_at=_now(), updated_at=_now(),
        )
        obj["reactions"]["url"] = f"{obj['url']}/reactions"
        self.comments[id] = obj
        return obj

    def add_issue(self, repo: str, title: str, body: str | None, labels: Sequence[str] = (), state: str = "open") -> dict[str, Any]:
        number, id = next(self._numbers), next(self._ids)
        obj = copy.deepcopy(self._templates["issue"])
        url = f"{self._base(repo)}/issues/{number}"
        obj.update(
            id=id, node_id=f"I_{id}", number=number, title=title, body=body, user=self.bot,
            url=url, repository_url=self._base(repo), labels_url=f"{url}/labels{{/name}}",
            comments_url=f"{url}/comments", events_url=f"{url}/events",
            html_url=f"https://github.com/{repo}/issues/{number}",
            assignee=None, assignees=[], milestone=None, comments=0,
            created_at=_now(), updated_at=_now(), closed_at=None,
        )
        obj["labels"] = [self._label(repo, name) for name in labels]
        self._set_state(obj, state)
        self.issues[number] = obj
        return obj

    def _label(self, repo: str, name: str) -> dict[str, Any]:
        return {"id": zlib.crc32(f"{repo}:{name}".encode()), "node_id": f"LA_{name}", "url": f"{self._base(repo)}/labels/{name}",
                "name": name, "color": "ededed", "default": False, "description": None}

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
            id=id, node_id=f"PRR_{id}", user=self.bot, body=body.get("body") or "",
            commit_id=body.get("commit_id") or obj["commit_id"],
            state=REVIEW_STATE.get(body.get("event") or "", "PENDING"), submitted_at=_now(),
            html_url=html, pull_request_url=f"{self._base(repo)}/pulls/{pr}",
            _links={"html": {"href": html}, "pull_request": {"href": f"{self._base(repo)}/pulls/{pr}"}},
        )
        return obj

    def _check_run(self, repo: str, body: dict[str, Any]) -> dict[str, Any]:
        id = next(self._ids)
        obj = copy.deepcopy(self._templates["check_run"])
        obj.update(
            id=id, node_id=f"CR_{id}", name=body["name"], head_sha=body["head_sha"],
            external_id=body.get("external_id", ""), details_url=body.get("details_url"),
            url=f"{self._base(repo)}/check-runs/{id}", html_url=f"https://github.com/{repo}/runs/{id}",
            status="queued", conclusion=None, started_at=_now(), completed_at=None, pull_requests=[],
        )
        obj["output"] = {"title": None, "summary": None, "text": None, "annotations_count": 0,
                         "annotations_url": f"{obj['url']}/annotations"}
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
        call = Call(request.method, "/" + request.path_params["path"], dict(request.query_params), payload,
                    {k.lower(): v for k, v in request.headers.items()})
        with self._lock:
            self.requests.append(call)
            status, body, headers = self._dispatch(call, str(request.url))
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
        authorization = call.headers.get("authorization", "")
        if not authorization:
            return 401, {"message": "Requires authentication"}, {}
        if authorization.removeprefix("token ") in self._revoked:
            return 401, {"message": "Bad credentials"}, {}
        for method, pattern, handler in ROUTES:
            match = re.fullmatch(pattern, call.path)
            if match and method == call.method:
                return getattr(self, handler)(call, full_url, **match.groupdict())
        return 404, {"message": f"fake GitHub does not serve {call.method} {call.path}"}, {}

    @staticmethod
    def _page(call: Call, full_url: str, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = int(call.query.get("per_page", 30))
        page = int(call.query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            base, _, query = full_url.partition("?")
            params = {k: v[-1] for k, v in parse_qs(query).items()} | {"page": str(page + 1), "per_page": str(per_page)}
            headers["link"] = f'<{base}?{urlencode(params)}>; rel="next"'
        return 200, chunk, headers

    # ------------------------------------------------------------ routes

    def mint_token(self, call: Call, url: str, installation: str) -> tuple[int, Any, dict[str, str]]:
        authorization = call.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        import jwt

        self.jwt_claims.append(jwt.decode(authorization[7:], options={"verify_signature": False}))
        token = f"ghs_fake{installation}x{len(self.minted_tokens) + 1}"
        self.minted_tokens.append(token)
        expires = (datetime.now(timezone.utc) + self.token_ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {"token": token, "expires_at": expires, "permissions": {"issues": "write"},
                     "repository_selection": "all"}, {}

    def list_comments(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        issue_url = f"{self._base(repo)}/issues/{number}"
        return self._page(call, url, [c for c in self.comments.values() if c["issue_url"] == issue_url])

    def create_comment(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return 201, self.add_comment(repo, int(number), call.json["body"]), {}

    def update_comment(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        comment = self.comments.get(int(id))
        if comment is None:
            return 404, {"message": "Not Found"}, {}
        comment.update(body=call.json["body"], updated_at=_now())
        return 200, comment, {}

    def react(self, call: Call, url: str, repo: str, target: str, id: str) -> tuple[int, Any, dict[str, str]]:
        key = (repo, target, int(id), call.json["content"])
        for reaction in self.reactions:
            if reaction["_key"] == key:
                return 200, {k: v for k, v in reaction.items() if k != "_key"}, {}
        reaction_id = next(self._ids)
        reaction = {"id": reaction_id, "node_id": f"REA_{reaction_id}", "user": self.bot,
                    "content": call.json["content"], "created_at": _now(), "_key": key}
        self.reactions.append(reaction)
        return 201, {k: v for k, v in reaction.items() if k != "_key"}, {}

    def react_comment(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        return self.react(call, url, repo, "comment", id)

    def react_issue(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return self.react(call, url, repo, "issue", number)

    def list_issues(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        state = call.query.get("state", "open")
        wanted = [name for name in call.query.get("labels", "").split(",") if name]
        items = [
            i for i in self.issues.values()
            if i["repository_url"] == self._base(repo)
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
        issue = self.issues.get(int(number))
        if issue is None or issue["repository_url"] != self._base(repo):
            return 404, {"message": "Not Found"}, {}
        body = call.json
        for key in ("title", "body"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            issue["labels"] = [self._label(repo, n if isinstance(n, str) else n["name"]) for n in body["labels"]]
        if "state" in body:
            self._set_state(issue, body["state"])
        issue["updated_at"] = _now()
        return 200, issue, {}

    def list_reviews(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        pr_url = f"{self._base(repo)}/pulls/{number}"
        return self._page(call, url, [r for r in self.reviews.values() if r["pull_request_url"] == pr_url])

    def create_review(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        comments = call.json.get("comments") or []
        if self.valid_anchors is not None:
            bad = [c for c in comments if (c["path"], c.get("line")) not in self.valid_anchors]
            if bad:
                return 422, {"message": "Unprocessable Entity",
                             "errors": ["Line could not be resolved"],
                             "documentation_url": "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"}, {}
        review = self._review(repo, int(number), call.json)
        self.reviews[review["id"]] = review
        self.review_comments[review["id"]] = comments
        return 200, review, {}

    def create_check_run(self, call: Call, url: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        if len((call.json.get("output") or {}).get("annotations") or []) > 50:
            return 422, {"message": "Only 50 annotations per request"}, {}
        run = self._check_run(repo, call.json)
        self._apply_check_run(run, call.json)
        self.check_runs[run["id"]] = run
        return 201, run, {}

    def update_check_run(self, call: Call, url: str, repo: str, id: str) -> tuple[int, Any, dict[str, str]]:
        run = self.check_runs.get(int(id))
        if run is None:
            return 404, {"message": "Not Found"}, {}
        if len((call.json.get("output") or {}).get("annotations") or []) > 50:
            return 422, {"message": "Only 50 annotations per request"}, {}
        self._apply_check_run(run, call.json)
        return 200, run, {}

    def list_check_runs(self, call: Call, url: str, repo: str, ref: str) -> tuple[int, Any, dict[str, str]]:
        runs = [r for r in self.check_runs.values()
                if r["head_sha"] == ref and r["url"].startswith(self._base(repo) + "/")
                and r["name"] == call.query.get("check_name", r["name"])]
        return 200, {"total_count": len(runs), "check_runs": runs}, {}

    def get_pull_diff(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        if "diff" not in call.headers.get("accept", ""):
            pull = self.pulls.get((repo, int(number)))
            return (200, pull, {}) if pull is not None else (404, {"message": "Not Found"}, {})
        diff = self.pull_diffs.get((repo, int(number)))
        return (200, diff, {}) if diff is not None else (404, {"message": "Not Found"}, {})

    def list_pull_files(self, call: Call, url: str, repo: str, number: str) -> tuple[int, Any, dict[str, str]]:
        return self._page(call, url, self.pull_files.get((repo, int(number)), []))

    def get_compare_diff(self, call: Call, url: str, repo: str, base: str, head: str) -> tuple[int, Any, dict[str, str]]:
        diff = self.compare_diffs.get((repo, base, head))
        if diff is None or "diff" not in call.headers.get("accept", ""):
            return 404, {"message": "Not Found"}, {}
        return 200, diff, {}

    def get_contents(self, call: Call, url: str, repo: str, path: str) -> tuple[int, Any, dict[str, str]]:
        ref = call.query.get("ref", "HEAD")
        content = self.files.get((repo, ref, path))
        if content is None:
            return 404, {"message": "Not Found"}, {}
        encoded = base64.b64encode(content).decode()
        return 200, {
            "type": "file", "encoding": "base64", "size": len(content), "name": path.rsplit("/", 1)[-1],
            "path": path, "content": encoded, "sha": hashlib.sha1(content).hexdigest(),
            "url": url, "git_url": None, "html_url": None, "download_url": None,
            "_links": {"self": url, "git": None, "html": None},
        }, {}

    def get_permission(self, call: Call, url: str, repo: str, user: str) -> tuple[int, Any, dict[str, str]]:
        level = self.permissions.get(user)
        if level is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        flags = {"admin": level == "admin", "maintain": level in ("admin", "maintain"),
                 "push": level in ("admin", "maintain", "write"),
                 "triage": level in ("admin", "maintain", "write", "triage"), "pull": level != "none"}
        collaborator = self.user(user, 10_000 + len(user)) | {"permissions": flags, "role_name": level}
        return 200, {"permission": LEGACY_PERMISSION[level], "role_name": level, "user": collaborator}, {}


_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
ROUTES: list[tuple[str, str, str]] = [
    ("POST", r"/app/installations/(?P<installation>\d+)/access_tokens", "mint_token"),
    ("GET", _REPO + r"/issues/(?P<number>\d+)/comments", "list_comments"),
    ("POST", _REPO + r"/issues/(?P<number>\d+)/comments", "create_comment"),
    ("PATCH", _REPO + r"/issues/comments/(?P<id>\d+)", "update_comment"),
    ("POST", _REPO + r"/issues/comments/(?P<id>\d+)/reactions", "react_comment"),
    ("POST", _REPO + r"/issues/(?P<number>\d+)/reactions", "react_issue"),
    ("GET", _REPO + r"/issues", "list_issues"),
    ("POST", _REPO + r"/issues", "create_issue"),
    ("PATCH", _REPO + r"/issues/(?P<number>\d+)", "update_issue"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)/reviews", "list_reviews"),
    ("POST", _REPO + r"/pulls/(?P<number>\d+)/reviews", "create_review"),
    ("POST", _REPO + r"/check-runs", "create_check_run"),
    ("PATCH", _REPO + r"/check-runs/(?P<id>\d+)", "update_check_run"),
    ("GET", _REPO + r"/commits/(?P<ref>[^/]+)/check-runs", "list_check_runs"),
    ("GET", _REPO + r"/collaborators/(?P<user>[^/]+)/permission", "get_permission"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)", "get_pull_diff"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)/files", "list_pull_files"),
    ("GET", _REPO + r"/compare/(?P<base>[^/]+)\.\.\.(?P<head>[^/]+)", "get_compare_diff"),
    ("GET", _REPO + r"/contents/(?P<path>.+)", "get_contents"),
]
