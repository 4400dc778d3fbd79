"""What a spec agent reads from the fake GitHub, and the labels it sets (a part of `FakeGitHub`).

Seeded by tests, answered as GitHub answers them (complete objects from real payloads):

- `GET /repos/{repo}/issues/{n}` — an issue of `issues`, or a pull request of `pulls` as an issue;
- `GET /repos/{repo}/git/trees/{branch}?recursive=1` — the files of `files` on that branch (or
  at its head sha), with their directories; an ETag, and 304 to an `If-None-Match` naming it;
- `GET /search/issues?q=repo:R is:issue [is:open|is:closed] w1 OR w2 …` — issues of R whose
  title or body holds any of the words, most words first (`searches` records each `q`); its
  answers carry `x-ratelimit-resource: search`, as GitHub's;
- `GET /repos/{repo}/labels` — `repo_labels[repo]` (`add_repo_label`) and every label an issue
  was given (GitHub creates a label added to an issue);
- `GET/POST /repos/{repo}/issues/{n}/labels`, `DELETE …/labels/{name}` (404 when the issue
  does not have it);
- `GET /repos/{repo}/releases` (newest first) and `…/releases/latest` (the newest published,
  not a draft or prerelease; 404 without one) — `add_release(...)`;
- `GET /repos/{repo}/contributors` (most contributions first; 204 when there are none) —
  `add_contributor(...)`;
- `GET /repos/{repo}/stargazers` (oldest first) — `star(repo, login)`; the repository's
  `stargazers_count` counts them.

`FakeGitHub.merge_pull(repo, number, merged_at)` merges a pull request (closed, merged and
updated then); `GET /repos/{repo}/pulls?sort=updated&direction=desc` lists by last update.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from bot.publish.common import blob_sha

Answer = tuple[int, Any, dict[str, str]]


class RepoReads:
    _templates: dict[str, Any]
    issues: dict[tuple[str, int], dict[str, Any]]
    pulls: dict[tuple[str, int], dict[str, Any]]
    files: dict[tuple[str, str, str], bytes]
    default_branch: str
    _base: Callable[[str], str]
    user: Callable[..., dict[str, Any]]
    heads: Callable[[str], dict[str, str]]
    _label: Callable[[str, str], dict[str, Any]]
    _page: Callable[[Any, str, list[Any]], Answer]
    _ids: Any

    def _reset_repo_reads(self) -> None:
        self.repo_labels: dict[str, list[str]] = {}  # repo → label names, in the order made
        self.releases: list[dict[str, Any]] = []  # every release, in the order made
        self.contributors: dict[str, list[dict[str, Any]]] = {}  # repo → contributors
        self.stargazers: dict[str, list[dict[str, Any]]] = {}  # repo → users, oldest first
        self.searches: list[str] = []  # each search's q

    # ------------------------------------------------------------ seeding

    def add_repo_label(self, repo: str, name: str) -> None:
        names = self.repo_labels.setdefault(repo, [])
        if name.casefold() not in {n.casefold() for n in names}:
            names.append(name)

    def add_release(
        self,
        repo: str,
        tag: str,
        *,
        name: str = "",
        body: str = "",
        published_at: datetime | None = None,
        draft: bool = False,
        prerelease: bool = False,
    ) -> dict[str, Any]:
        id = next(self._ids)
        obj = json.loads(
            json.dumps(self._templates["release"])
            .replace("Codertocat/Hello-World", repo)
            .replace("17372790", str(id))
            .replace("/0.0.1", f"/{tag}")
        )
        obj.update(
            id=id,
            node_id=f"RE_{id}",
            tag_name=tag,
            name=name,
            body=body,
            draft=draft,
            prerelease=prerelease,
            published_at=None if draft else _stamp(published_at or datetime.now(UTC)),
            created_at=_stamp(published_at or datetime.now(UTC)),
        )
        self.releases.append(obj)
        return obj

    def add_contributor(self, repo: str, login: str, contributions: int, type: str = "User") -> None:
        user = self.user(login, 20_000 + len(self.contributors.get(repo, [])), type=type)
        self.contributors.setdefault(repo, []).append(user | {"contributions": contributions})

    def star(self, repo: str, login: str, type: str = "User") -> None:
        self.stargazers.setdefault(repo, []).append(self.user(login, 30_000 + len(self.stargazers.get(repo, [])), type))

    # ------------------------------------------------------------ routes

    def get_issue(self, call: Any, url: str, repo: str, number: str) -> Answer:
        issue = self.issues.get((repo, int(number)))
        if issue is not None:
            return 200, issue, {}
        pull = self.pulls.get((repo, int(number)))
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        return 200, self._pull_as_issue(repo, pull), {}

    def _pull_as_issue(self, repo: str, pull: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(self._templates["issue"])
        issue_url = f"{self._base(repo)}/issues/{pull['number']}"
        obj.update({key: pull[key] for key in ("id", "number", "title", "body", "user", "state", "labels")})
        obj.update(
            node_id=f"I_{pull['id']}",
            url=issue_url,
            repository_url=self._base(repo),
            labels_url=f"{issue_url}/labels{{/name}}",
            comments_url=f"{issue_url}/comments",
            events_url=f"{issue_url}/events",
            html_url=pull["html_url"],
            assignee=None,
            assignees=[],
            milestone=None,
            comments=0,
            created_at=pull["created_at"],
            updated_at=pull["updated_at"],
            closed_at=pull["closed_at"],
            pull_request={
                "url": pull["url"],
                "html_url": pull["html_url"],
                "diff_url": pull["diff_url"],
                "patch_url": pull["patch_url"],
                "merged_at": pull["merged_at"],
            },
        )
        return obj

    def get_tree(self, call: Any, url: str, repo: str, ref: str) -> Answer:
        heads = self.heads(repo)
        if ref not in heads and ref not in heads.values():
            return 404, {"message": "Not Found"}, {}
        refs = {ref, heads.get(ref, ref)}
        paths = {path: content for (r, ref_, path), content in self.files.items() if r == repo and ref_ in refs}
        recursive = call.query.get("recursive") not in (None, "", "0", "false")
        entries: dict[str, dict[str, Any]] = {}
        for path, content in sorted(paths.items()):
            parts = path.split("/")
            if not recursive and len(parts) > 1:
                entries.setdefault(parts[0], self._tree_entry(repo, parts[0], None))
                continue
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                entries.setdefault(directory, self._tree_entry(repo, directory, None))
            entries[path] = self._tree_entry(repo, path, content)
        sha = hashlib.sha1(json.dumps(sorted((p, blob_sha(c)) for p, c in paths.items())).encode()).hexdigest()
        etag = f'W/"{sha}"'
        if call.headers.get("if-none-match") == etag:
            return 304, None, {"etag": etag}
        tree = {
            "sha": sha,
            "url": f"{self._base(repo)}/git/trees/{sha}",
            "tree": [entries[path] for path in sorted(entries)],
            "truncated": False,
        }
        return 200, tree, {"etag": etag}

    def _tree_entry(self, repo: str, path: str, content: bytes | None) -> dict[str, Any]:
        if content is None:
            sha = hashlib.sha1(f"tree:{repo}:{path}".encode()).hexdigest()
            return {
                "path": path,
                "mode": "040000",
                "type": "tree",
                "sha": sha,
                "url": f"{self._base(repo)}/git/trees/{sha}",
            }
        sha = blob_sha(content)
        return {
            "path": path,
            "mode": "100644",
            "type": "blob",
            "sha": sha,
            "size": len(content),
            "url": f"{self._base(repo)}/git/blobs/{sha}",
        }

    def search_issues(self, call: Any, url: str) -> Answer:
        query = call.query.get("q", "")
        self.searches.append(query)
        qualifiers = dict(re.findall(r"(\w+):(\S+)", query))
        states = set(re.findall(r"\bis:(open|closed)\b", query))
        words = [w.lower() for w in re.sub(r"\w+:\S+", " ", query).split() if w not in ("OR", "AND")]
        repo = qualifiers.get("repo")
        scored = []
        for (r, _), issue in self.issues.items():
            if r != repo or (states and issue["state"] not in states):
                continue
            text = f"{issue['title']} {issue.get('body') or ''}".lower()
            score = sum(1 for word in words if re.search(rf"\b{re.escape(word)}\b", text))
            if score:
                scored.append((score, issue["number"], issue))
        scored.sort(key=lambda found: (found[0], found[1]), reverse=True)
        items = [issue | {"score": float(score)} for score, _, issue in scored]
        status, page, headers = self._page(call, url, items)
        reset = str(int(datetime.now(UTC).timestamp()) + 60)
        headers |= {
            "x-ratelimit-resource": "search",
            "x-ratelimit-limit": "30",
            "x-ratelimit-remaining": "29",
            "x-ratelimit-reset": reset,
        }
        answer = {"total_count": len(items), "incomplete_results": False, "items": page, "search_type": "lexical"}
        return status, answer, headers

    def list_repo_labels(self, call: Any, url: str, repo: str) -> Answer:
        names = list(self.repo_labels.get(repo, []))
        for (r, _), issue in self.issues.items():
            if r == repo:
                names.extend(label["name"] for label in issue["labels"])
        unique = list({name.casefold(): name for name in reversed(names)}.values())[::-1]
        return self._page(call, url, [self._label(repo, name) for name in unique])

    def list_issue_labels(self, call: Any, url: str, repo: str, number: str) -> Answer:
        issue = self.issues.get((repo, int(number)))
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        return self._page(call, url, issue["labels"])

    def add_issue_labels(self, call: Any, url: str, repo: str, number: str) -> Answer:
        issue = self.issues.get((repo, int(number)))
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        body = call.json
        names = body.get("labels", []) if isinstance(body, dict) else body
        names = [name if isinstance(name, str) else name["name"] for name in names]
        present = {label["name"].casefold() for label in issue["labels"]}
        for name in names:
            self.add_repo_label(repo, name)
            if name.casefold() not in present:
                issue["labels"].append(self._label(repo, name))
                present.add(name.casefold())
        return 200, issue["labels"], {}

    def remove_issue_label(self, call: Any, url: str, repo: str, number: str, name: str) -> Answer:
        issue = self.issues.get((repo, int(number)))
        name = unquote(name)
        if issue is None or name.casefold() not in {label["name"].casefold() for label in issue["labels"]}:
            return 404, {"message": "Label does not exist"}, {}
        issue["labels"] = [label for label in issue["labels"] if label["name"].casefold() != name.casefold()]
        return 200, issue["labels"], {}

    def list_releases(self, call: Any, url: str, repo: str) -> Answer:
        mine = [r for r in self.releases if r["html_url"].startswith(f"https://github.com/{repo}/")]
        return self._page(call, url, sorted(mine, key=lambda r: (r["created_at"], r["id"]), reverse=True))

    def latest_release(self, call: Any, url: str, repo: str) -> Answer:
        mine = [
            r
            for r in self.releases
            if r["html_url"].startswith(f"https://github.com/{repo}/") and not r["draft"] and not r["prerelease"]
        ]
        if not mine:
            return 404, {"message": "Not Found"}, {}
        return 200, max(mine, key=lambda r: (r["created_at"], r["id"])), {}

    def list_contributors(self, call: Any, url: str, repo: str) -> Answer:
        found = sorted(self.contributors.get(repo, []), key=lambda c: c["contributions"], reverse=True)
        if not found:
            return 204, None, {}
        return self._page(call, url, found)

    def list_stargazers(self, call: Any, url: str, repo: str) -> Answer:
        return self._page(call, url, self.stargazers.get(repo, []))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
READ_ROUTES: list[tuple[str, str, str]] = [
    ("GET", _REPO + r"/issues/(?P<number>\d+)", "get_issue"),
    ("GET", _REPO + r"/git/trees/(?P<ref>.+)", "get_tree"),
    ("GET", r"/search/issues", "search_issues"),
    ("GET", _REPO + r"/labels", "list_repo_labels"),
    ("GET", _REPO + r"/issues/(?P<number>\d+)/labels", "list_issue_labels"),
    ("POST", _REPO + r"/issues/(?P<number>\d+)/labels", "add_issue_labels"),
    ("DELETE", _REPO + r"/issues/(?P<number>\d+)/labels/(?P<name>.+)", "remove_issue_label"),
    ("GET", _REPO + r"/releases", "list_releases"),
    ("GET", _REPO + r"/releases/latest", "latest_release"),
    ("GET", _REPO + r"/contributors", "list_contributors"),
    ("GET", _REPO + r"/stargazers", "list_stargazers"),
]
