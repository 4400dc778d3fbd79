"""What a ContextClient (agents/context/client.py) takes and gives back: the same values over HTTP and in process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Context:
    """One version of a context, with its contents."""

    repo: str  # OWNER/NAME
    agent: str
    scope: str
    version: int
    data: dict[str, Any]
    summary: str
    tags: list[str]
    created_by: str | None
    job: str | None
    event: str | None
    created_at: datetime | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Context:
        return cls(
            f"{doc['owner']}/{doc['repo']}",
            doc["agent"],
            doc["scope"],
            doc["version"],
            doc.get("data") or {},
            doc.get("summary", ""),
            list(doc.get("tags") or []),
            doc.get("created_by"),
            doc.get("job"),
            doc.get("event"),
            _when(doc.get("created_at")),
        )


@dataclass(frozen=True)
class SearchPage:
    items: list[Context]  # without contents (`data` is empty): get() a version for them
    next: str | None  # the cursor of the next page, None on the last


@dataclass(frozen=True)
class LineageEntry:
    version: int
    parent: int | None
    agent: str
    created_by: str | None
    created_at: datetime | None
    job: str | None
    event: str | None
    summary: str
    tags: list[str]
    restores: tuple[int, int] | None  # (snapshot id, version) a restored version carries
    kept_by_snapshot: int | None  # the live row is gone; this snapshot kept its lineage
    handoffs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> LineageEntry:
        restores = doc.get("restores")
        return cls(
            doc["version"],
            doc.get("parent"),
            doc["agent"],
            doc.get("created_by"),
            _when(doc.get("created_at")),
            doc.get("job"),
            doc.get("event"),
            doc.get("summary", ""),
            list(doc.get("tags") or []),
            (restores["snapshot"], restores["version"]) if restores else None,
            doc.get("kept_by_snapshot"),
            list(doc.get("handoffs") or []),
        )


@dataclass(frozen=True)
class Snapshot:
    id: int
    contexts: int


@dataclass(frozen=True)
class Restored:
    repo: str
    agent: str
    scope: str
    version: int  # the new version
    restores: int  # the snapshotted version whose contents it carries

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Restored:
        return cls(f"{doc['owner']}/{doc['repo']}", doc["agent"], doc["scope"], doc["version"], doc["restores"])


@dataclass(frozen=True)
class HandoffRecord:
    id: int
    repo: str
    scope: str
    from_agent: str
    to_agent: str
    context_version: int | None
    package: dict[str, Any]  # deliverable, open_questions, provenance
    job: str | None
    created_at: datetime | None
    claimed_at: datetime | None
    claimed_by: str | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> HandoffRecord:
        return cls(
            doc["id"],
            f"{doc['owner']}/{doc['repo']}",
            doc["scope"],
            doc["from_agent"],
            doc["to_agent"],
            doc.get("context_version"),
            doc.get("package") or {},
            doc.get("job"),
            _when(doc.get("created_at")),
            _when(doc.get("claimed_at")),
            doc.get("claimed_by"),
        )


@dataclass(frozen=True)
class ContextWrite:
    """What `put` asks for."""

    repo: str
    agent: str
    scope: str
    data: dict[str, Any]
    expected_version: int | None  # None: create the context
    summary: str
    tags: list[str]


@dataclass(frozen=True)
class NewHandoff:
    """What `handoff` asks for."""

    repo: str
    scope: str
    from_agent: str
    to_agent: str
    package: dict[str, Any]  # deliverable, open_questions, provenance
    version: int | None


@dataclass(frozen=True)
class HandoffQuery:
    """What `handoffs` asks for."""

    to_agent: str | None
    repo: str | None
    scope: str | None
    unclaimed: bool
    limit: int


@dataclass(frozen=True)
class JobBudget:
    """What `job_budget` answers (agents/budgets.py computes it): what the job has spent, and what it may
    still spend under the tightest limit that holds it — its own budget, or one of the operator's."""

    spent_usd: float  # every row of the job in the ledger
    remaining_usd: float  # may be below 0: a limit overspent (by concurrent calls)
    limit: str  # the binding limit, named: "the monthly LLM budget of installation 7 ($5.00)"
    scope: str  # which: job, installation_daily, installation_monthly, agent_daily, agent_monthly

    @property
    def own(self) -> bool:
        """The job's own budget binds (a maintainer may raise it), not an operator's limit."""
        return self.scope == "job"

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> JobBudget:
        return cls(
            float(document["spent_usd"]),
            float(document["remaining_usd"]),
            str(document["limit"]),
            str(document["scope"]),
        )
