"""ContextClient: how a CoE job or an agent reads and writes contexts, whichever side of the API it is on,
and records a job's model calls in the decision ledger (agents/ledger.py).

One interface, two implementations with the same behaviour and the same errors
(agents.context.errors; a stale write raises StaleContext):

- HttpContextClient, over the Context API with a bearer token: what a job on a
  GitHub Actions runner uses, with nothing but WAOOAW_API_URL and a scoped token;
- DbContextClient, straight on the store for a grant: what code inside the app uses.

`bot.wiring.open_context_client(settings, …)` picks one from the settings.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from agents.context.client_values import (
    Context,
    ContextWrite,
    HandoffQuery,
    HandoffRecord,
    JobBudget,
    LineageEntry,
    NewHandoff,
    Restored,
    SearchPage,
    Snapshot,
)
from agents.context.documents import ContextRef, split_repo
from agents.context.errors import (
    AlreadyClaimed,
    Conflict,
    ContextError,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from agents.context.repository import StaleContext
from agents.context.search import DEFAULT_LIMIT, SearchQuery
from agents.context.service import ContextService
from agents.ledger import Entry, record_for_job, spend_for_job
from agents.store.db import Store
from agents.tokens import Grant

if TYPE_CHECKING:
    from agents.budgets import BudgetPolicy

# --------------------------------------------------------------------------- the interface


class ContextClient(ABC):
    """Read and write versioned contexts, their lineage, snapshots and handoffs.

    `repo` is always OWNER/NAME. Writes are optimistic: `put` names the version it
    builds on (None to create) and raises StaleContext if another writer got there
    first; `update` does the read-change-write loop for you.
    """

    @abstractmethod
    def get(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> Context | None:
        """The latest version (or `version`), None if there is none."""

    def put(
        self,
        repo: str,
        agent: str,
        scope: str,
        data: dict[str, Any],
        *,
        expected_version: int | None,
        summary: str = "",
        tags: Iterable[str] = (),
    ) -> int:
        """Write the next version and return its number; `expected_version` None (or 0) creates the context."""
        _check_json(data)
        return self._put(ContextWrite(repo, agent, scope, data, expected_version or None, summary, list(tags)))

    @abstractmethod
    def _put(self, write: ContextWrite) -> int:
        """`put`, its data checked as JSON."""

    @abstractmethod
    def lineage(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> list[LineageEntry]:
        """The versions that led to this one, oldest first."""

    def search(
        self,
        *,
        repo: str | None = None,
        agent: str | None = None,
        scope: str | None = None,
        scope_prefix: str | None = None,
        tags: Iterable[str] = (),
        q: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        all_versions: bool = False,
    ) -> SearchPage:
        """Contexts (their latest versions unless `all_versions`), newest first, one page."""
        return self._search(
            SearchQuery(
                repo=repo,
                agent=agent,
                scope=scope,
                scope_prefix=scope_prefix,
                tags=tuple(tags),
                q=q,
                since=since,
                until=until,
                cursor=cursor,
                limit=limit,
                all_versions=all_versions,
            )
        )

    @abstractmethod
    def _search(self, query: SearchQuery) -> SearchPage:
        """`search`."""

    @abstractmethod
    def snapshot(self, repo: str, scope_prefix: str = "") -> Snapshot:
        """Freeze every context of the repository whose scope starts with `scope_prefix`."""

    @abstractmethod
    def restore(self, snapshot_id: int) -> list[Restored]:
        """Write each snapshotted context back as a new version with the snapshotted contents."""

    def handoff(
        self,
        *,
        repo: str,
        scope: str,
        from_agent: str,
        to_agent: str,
        deliverable: Any,
        open_questions: Iterable[str] = (),
        provenance: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> int:
        """Address a package to `to_agent`, with `from_agent`'s context at `scope`; returns its id."""
        package = {"deliverable": deliverable, "open_questions": list(open_questions), "provenance": provenance or {}}
        _check_json(package)
        return self._handoff(NewHandoff(repo, scope, from_agent, to_agent, package, version))

    @abstractmethod
    def _handoff(self, handoff: NewHandoff) -> int:
        """`handoff`, its package checked as JSON."""

    @abstractmethod
    def claim(self, handoff_id: int) -> HandoffRecord:
        """Take a handoff; only the first claim succeeds, later ones raise AlreadyClaimed."""

    def handoffs(
        self,
        *,
        to_agent: str | None = None,
        repo: str | None = None,
        scope: str | None = None,
        unclaimed: bool = True,
        limit: int = DEFAULT_LIMIT,
    ) -> list[HandoffRecord]:
        """Handoffs waiting (or all, with `unclaimed=False`), oldest first."""
        return self._handoffs(HandoffQuery(to_agent, repo, scope, unclaimed, limit))

    @abstractmethod
    def _handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        """`handoffs`."""

    @abstractmethod
    def record_decisions(self, repo: str, job: str, entries: Sequence[Entry]) -> int:
        """Write a job's ledger rows (1 to agents.ledger.ENTRIES_MAX, each with its key); returns how many
        were new: a key the job already has is not written again."""

    @abstractmethod
    def job_spend(self, repo: str, job: str) -> float:
        """What the job has spent so far, in USD, from the ledger."""

    @abstractmethod
    def job_budget(self, repo: str, job: str, *, agent: str, budget_usd: float) -> JobBudget:
        """What the job has spent and may still spend under the tightest of its own budget (`budget_usd`)
        and the operator's limits of its installation and of `agent`, its agent (agents/budgets.py)."""

    def search_all(self, **filters: Any) -> Iterator[Context]:
        """Every match, following the cursors."""
        cursor = None
        while True:
            page = self.search(**filters, cursor=cursor)
            yield from page.items
            if page.next is None:
                return
            cursor = page.next

    def search_contents(self, **filters: Any) -> Iterator[Context]:
        """Like `search_all`, each context with its contents: search lists them without, so each is read."""
        for listed in self.search_all(**filters):
            found = self.get(listed.repo, listed.agent, listed.scope)
            if found is not None:
                yield found

    def update(
        self,
        repo: str,
        agent: str,
        scope: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        summary: str | None = None,
        tags: Iterable[str] | None = None,
        attempts: int = 5,
    ) -> int:
        """Read the latest version, apply `change` to a copy of its data, write it; again on StaleContext."""
        for attempt in range(1, attempts + 1):
            current = self.get(repo, agent, scope)
            base = json.loads(json.dumps(current.data)) if current else {}
            try:
                return self.put(
                    repo,
                    agent,
                    scope,
                    change(base),
                    expected_version=current.version if current else None,
                    summary=summary if summary is not None else (current.summary if current else ""),
                    tags=list(tags) if tags is not None else (current.tags if current else []),
                )
            except StaleContext:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:  # noqa: B027 - a client with nothing to release keeps this no-op
        """Release connections."""

    def __enter__(self) -> ContextClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# --------------------------------------------------------------------------- over HTTP

_BY_STATUS: dict[int, type[ContextError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    503: Unavailable,
}


class HttpContextClient(ContextClient):
    """The Context API over HTTP (httpx), authenticated by a `wao_…` token.

    A 429 is retried after its Retry-After, a few times; every other refusal raises.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        rate_limit_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=api_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "waooaw-context-client"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = rate_limit_retries
        self._sleep = sleep

    def get(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> Context | None:
        params = {"version": version} if version is not None else None
        try:
            response = self._call("GET", _context_path(repo, agent, scope), params=params)
        except NotFound:
            return None
        return Context.from_document(response.json())

    def _put(self, write: ContextWrite) -> int:
        headers = {"If-Match": f'"{write.expected_version}"'} if write.expected_version else {}
        body = {"data": write.data, "summary": write.summary, "tags": write.tags}
        _check_json(body)
        path = _context_path(write.repo, write.agent, write.scope)
        response = self._call("PUT", path, json=body, headers=headers, expected=201, conflict=StaleContext)
        return int(response.json()["version"])

    def lineage(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> list[LineageEntry]:
        params = {"version": version} if version is not None else None
        response = self._call("GET", _context_path(repo, agent, scope) + "/lineage", params=params)
        return [LineageEntry.from_document(entry) for entry in response.json()["versions"]]

    def _search(self, query: SearchQuery) -> SearchPage:
        params: list[tuple[str, str]] = [("limit", str(query.limit))]
        for name in ("repo", "agent", "scope", "scope_prefix", "q", "cursor"):
            if value := getattr(query, name):
                params.append((name, value))
        params += [("tag", tag) for tag in query.tags]
        moments = (("since", query.since), ("until", query.until))
        params += [(name, moment.isoformat()) for name, moment in moments if moment]
        if query.all_versions:
            params.append(("all_versions", "true"))
        page = self._call("GET", "/contexts", params=params).json()
        return SearchPage([Context.from_document(item) for item in page["items"]], page["next"])

    def snapshot(self, repo: str, scope_prefix: str = "") -> Snapshot:
        owner, name = split_repo(repo)
        body = {"owner": owner, "repo": name, "scope_prefix": scope_prefix}
        created = self._call("POST", "/snapshots", json=body, expected=201).json()
        return Snapshot(created["id"], created["contexts"])

    def restore(self, snapshot_id: int) -> list[Restored]:
        response = self._call("POST", f"/snapshots/{int(snapshot_id)}/restore")
        return [Restored.from_document(entry) for entry in response.json()["restored"]]

    def _handoff(self, handoff: NewHandoff) -> int:
        owner, name = split_repo(handoff.repo)
        body = {
            "owner": owner,
            "repo": name,
            "scope": handoff.scope,
            "from_agent": handoff.from_agent,
            "to_agent": handoff.to_agent,
            "package": handoff.package,
            "version": handoff.version,
        }
        _check_json(body)
        return int(self._call("POST", "/handoffs", json=body, expected=201).json()["id"])

    def claim(self, handoff_id: int) -> HandoffRecord:
        response = self._call("POST", f"/handoffs/{int(handoff_id)}/claim", conflict=AlreadyClaimed)
        return HandoffRecord.from_document(response.json())

    def _handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        params = {"unclaimed": str(query.unclaimed).lower(), "limit": str(query.limit)}
        params.update({name: value for name in ("to_agent", "repo", "scope") if (value := getattr(query, name))})
        return [
            HandoffRecord.from_document(doc) for doc in self._call("GET", "/handoffs", params=params).json()["items"]
        ]

    def record_decisions(self, repo: str, job: str, entries: Sequence[Entry]) -> int:
        owner, name = split_repo(repo)
        body = {"owner": owner, "repo": name, "job": job, "entries": [entry.document() for entry in entries]}
        _check_json(body)
        return int(self._call("POST", "/decisions", json=body, expected=201).json()["recorded"])

    def job_spend(self, repo: str, job: str) -> float:
        owner, name = split_repo(repo)
        params = {"owner": owner, "repo": name, "job": job}
        return float(self._call("GET", "/decisions/spend", params=params).json()["cost_usd"])

    def job_budget(self, repo: str, job: str, *, agent: str, budget_usd: float) -> JobBudget:
        owner, name = split_repo(repo)
        params = {"owner": owner, "repo": name, "job": job, "agent": agent, "budget_usd": repr(float(budget_usd))}
        return JobBudget.from_document(self._call("GET", "/decisions/budget", params=params).json())

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        expected: int = 200,
        conflict: type[ContextError] = Conflict,
        **kwargs: Any,
    ) -> httpx.Response:
        for attempt in range(self._retries + 1):
            response = self._http.request(method, path, **kwargs)
            if response.status_code != 429 or attempt == self._retries:
                break
            self._sleep(_retry_after(response))
        if response.status_code == expected:
            return response
        raise _error(response, conflict)


def _context_path(repo: str, agent: str, scope: str) -> str:
    ref = ContextRef.parse(repo, agent, scope)
    owner, name = ref.repo.split("/")
    return "/contexts/" + "/".join(quote(part, safe="") for part in (owner, name, ref.agent, ref.scope))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _error(response: httpx.Response, conflict: type[ContextError]) -> ContextError:
    try:
        body = response.json()
        message = body.get("error") or json.dumps(body.get("detail"))
    except (ValueError, AttributeError):
        message = response.text[:500] or response.reason_phrase
    message = f"{response.request.method} {response.request.url.path}: {response.status_code} {message}"
    if response.status_code == 429:
        return RateLimited(message, _retry_after(response))
    kind = conflict if response.status_code == 409 else _BY_STATUS.get(response.status_code, ContextError)
    error = kind(message)
    if kind is ContextError:
        error.status = response.status_code
    return error


# --------------------------------------------------------------------------- in the app


class DbContextClient(ContextClient):
    """The same operations straight on the store, for code running inside the app. `budgets` are the
    operator's limits a job's budget is held to (none when not given)."""

    def __init__(self, store: Store, grant: Grant, *, budgets: BudgetPolicy | None = None) -> None:
        self.store = store
        self.service = ContextService(store)
        self.grant = grant
        self.budgets = budgets

    def get(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> Context | None:
        try:
            return Context.from_document(self.service.get(self.grant, ContextRef.parse(repo, agent, scope), version))
        except NotFound:
            return None

    def _put(self, write: ContextWrite) -> int:
        ref = ContextRef.parse(write.repo, write.agent, write.scope)
        document = self.service.put(
            self.grant, ref, write.data, if_match=write.expected_version, summary=write.summary, tags=write.tags
        )
        return int(document["version"])

    def lineage(self, repo: str, agent: str, scope: str, *, version: int | None = None) -> list[LineageEntry]:
        entries = self.service.lineage(self.grant, ContextRef.parse(repo, agent, scope), version)
        return [LineageEntry.from_document(entry) for entry in entries]

    def _search(self, query: SearchQuery) -> SearchPage:
        page = self.service.search(self.grant, query)
        return SearchPage([Context.from_document(item) for item in page["items"]], page["next"])

    def snapshot(self, repo: str, scope_prefix: str = "") -> Snapshot:
        created = self.service.snapshot(self.grant, "/".join(split_repo(repo)), scope_prefix)
        return Snapshot(created["id"], created["contexts"])

    def restore(self, snapshot_id: int) -> list[Restored]:
        return [Restored.from_document(entry) for entry in self.service.restore(self.grant, snapshot_id)["restored"]]

    def _handoff(self, handoff: NewHandoff) -> int:
        created = self.service.create_handoff(
            self.grant,
            repo=handoff.repo,
            scope=handoff.scope,
            from_agent=handoff.from_agent,
            to_agent=handoff.to_agent,
            package=handoff.package,
            version=handoff.version,
        )
        return int(created["id"])

    def claim(self, handoff_id: int) -> HandoffRecord:
        return HandoffRecord.from_document(self.service.claim_handoff(self.grant, handoff_id))

    def _handoffs(self, query: HandoffQuery) -> list[HandoffRecord]:
        found = self.service.list_handoffs(
            self.grant,
            to_agent=query.to_agent,
            repo=query.repo,
            scope=query.scope,
            unclaimed=query.unclaimed,
            limit=query.limit,
        )
        return [HandoffRecord.from_document(doc) for doc in found]

    def record_decisions(self, repo: str, job: str, entries: Sequence[Entry]) -> int:
        for entry in entries:
            _check_json(entry.outcome)
        return record_for_job(self.store, self.grant, repo, job, entries)

    def job_spend(self, repo: str, job: str) -> float:
        return spend_for_job(self.store, self.grant, repo, job)

    def job_budget(self, repo: str, job: str, *, agent: str, budget_usd: float) -> JobBudget:
        from agents.budgets import BudgetPolicy, job_budget  # the LLM client: not for every command's start-up

        policy = self.budgets or BudgetPolicy()
        return job_budget(self.store, self.grant, policy, repo, job, agent=agent, budget_usd=budget_usd)


def _check_json(value: Any) -> None:
    """What goes through the API must be plain JSON; the in-process client holds to the same."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"not JSON-serialisable: {exc}") from exc
