"""The platform's tables: deliveries, runs, outputs, the decision ledger, installations, agents' states and
hires, tokens, schedule leases, the outcomes agents' reputation is scored from.

The tables of agents' contexts are in agents/context/models.py, on the same `Base`. The same
models run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def declared_length(column: ColumnElement[Any]) -> int:
    """The length a String column was declared with: what a value must fit before it is written."""
    if not isinstance(column.type, String) or column.type.length is None:
        raise TypeError(f"{column} has no declared length")
    return column.type.length


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class InboxRecord(Base):
    """One webhook delivery, recorded before GitHub gets its 202."""

    __tablename__ = "inbox"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    repo: Mapped[str | None] = mapped_column(String(256))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # queued → done | failed → dead; ignored never reaches the bus
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_inbox_status_received", "status", "received_at"),
        Index("ix_inbox_received", "received_at"),
    )


class AgentRun(Base):
    """One agent's work on one delivery."""

    __tablename__ = "agent_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), index=True)
    agent: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    worker: Mapped[str | None] = mapped_column(String(128))
    # running → ok | error | timeout | deferred (rate limited: a later delivery runs it); abandoned when its
    # worker died and a later attempt took over
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_agent_runs_agent_started", "agent", "started_at"),
        Index("ix_agent_runs_started", "started_at"),
    )


NO_INSTALLATION = 0
"""`published_outputs.installation_id` where no App installation is known: outputs made with
token auth (`GITHUB_TOKEN`), and rows recorded before outputs were keyed by installation
whose delivery had left the inbox. An installation's outputs never find such a row: they
look for their object on GitHub by its marker instead, and record it under their own key."""


class PublishedOutput(Base):
    """What the edge has put on GitHub, by (installation, repository, marker), so a repeat updates
    instead of duplicating. A marker names an output within one repository only: the same
    marker in another repository, or the same repository under another installation, is
    another output."""

    __tablename__ = "published_outputs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger, server_default=str(NO_INSTALLATION))
    marker: Mapped[str] = mapped_column(String(512))
    agent: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    repo: Mapped[str] = mapped_column(String(256))
    github_id: Mapped[int | None] = mapped_column(BigInteger)
    url: Mapped[str | None] = mapped_column(String(512))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_published_outputs_created", "created_at"),
        Index("uq_published_outputs_key", "installation_id", "repo", "marker", unique=True),
        # What an outcome on GitHub (a thread, a merge, a label, a reaction) is traced back by.
        Index("ix_published_outputs_github_id", "repo", "github_id"),
    )


class AgentOutcome(Base):
    """One piece of evidence of how an agent's output fared (agents/reputation): a finding fixed, a review
    thread resolved, a pull request merged, a 👍 — or the opposite. Unique per (installation, repository,
    agent, kind, subject), so an outcome seen again (a redelivery, a batch read again) counts once."""

    __tablename__ = "agent_outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)  # NO_INSTALLATION as in published_outputs
    repo: Mapped[str] = mapped_column(String(256))
    agent: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(256))  # what it is about, unique within the kind
    positive: Mapped[bool] = mapped_column(Boolean)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    rule: Mapped[str | None] = mapped_column(String(128))  # the rule whose finding it is, where there is one
    url: Mapped[str | None] = mapped_column(String(512))
    github_id: Mapped[int | None] = mapped_column(BigInteger)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery_id: Mapped[str | None] = mapped_column(String(64))  # the delivery it was seen in; None: a batch read
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_agent_outcomes_subject", "installation_id", "repo", "agent", "kind", "subject", unique=True),
        Index("ix_agent_outcomes_observed", "observed_at"),
    )


class Decision(Base):
    """The decision ledger: every decision, its rung and what it cost (agents/ledger.py writes it)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    rung: Mapped[str] = mapped_column(String(16))  # deterministic | cached | llm | skipped
    status: Mapped[str] = mapped_column(String(16), default="settled", server_default="settled")  # | skipped | error
    input_hash: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    model_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # requests paid for
    repo: Mapped[str | None] = mapped_column(String(256))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    # A job's rows carry a key unique in the job (a step's is the step's key): written twice, recorded once.
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_decisions_created", "created_at"),
        Index("ix_decisions_agent_created", "agent", "created_at"),
    )


class AuditEntry(Base):
    """Who did what, when: every write through the API and every acting command."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Installation(Base):
    """A GitHub App installation; a suspended or deleted one gets no work.

    The account's and the repositories' ids say which account and repositories the App was
    installed on when a name alone could be another's since (renamed, or deleted and made again)."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str | None] = mapped_column(String(256))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended | deleted
    repos: Mapped[list[str]] = mapped_column(JSON, default=list)
    repo_ids: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # full name → repository id
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AgentState(Base):
    """An agent's lifecycle state, persisted so every worker sees the same (active, paused, retired)."""

    __tablename__ = "agent_states"

    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AgentHire(Base):
    """An agent's hired identity on one repository of one installation (agents/hires.py reads and writes it).

    `hired` comes from the default branch's `.github/waooaw.yml` (`agents.enable` True, `agents.disable`
    False, neither None: the agent's default). `state` is set with `waooaw agents pause|resume|retire
    --repo`; None follows the agent's state everywhere (`agent_states`)."""

    __tablename__ = "agent_hires"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)  # NO_INSTALLATION for token auth
    repo: Mapped[str] = mapped_column(String(256))
    agent: Mapped[str] = mapped_column(String(64))
    hired: Mapped[bool | None] = mapped_column(Boolean)
    state: Mapped[str | None] = mapped_column(String(16))  # active | paused | retired
    budget_usd: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("uq_agent_hires_key", "installation_id", "repo", "agent", unique=True),)


class DecisionCacheEntry(Base):
    """A settled LLM decision by key (whose, rule, rule version, input hash): the cache rung when there is no Redis."""

    __tablename__ = "decision_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Whose verdict it is (the key hashes it in too), so that it goes with its installation;
    # None: the shared cache of public inputs, or a run outside any installation.
    installation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    rule: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Budgets sum the ledger's cost_usd per installation (its repositories, its agents) by day and month,
# and per job; the report by repository and day.
Index("ix_decisions_repo_created", Decision.repo, Decision.created_at)
Index("ix_decisions_installation_created", Decision.installation_id, Decision.created_at)
# A job's rows are unique by key: the runner may write a step's row again (agents/ledger.py).
Index(
    "uq_decisions_job_key",
    Decision.job_id,
    Decision.repo,
    Decision.installation_id,
    Decision.idempotency_key,
    unique=True,
)


class AgentMessage(Base):
    """A message one agent sent another (agents/messages.py), recorded by the edge with its lineage.

    `key` makes sending idempotent within an installation: a rerun of the sending run sends
    nothing twice. `causation` is the delivery whose run sent it (a webhook's, or another
    message's `delivery_id`); `delivery_id` is the message's own delivery in the inbox, whose
    status is the message's state (queued, done, failed, dead)."""

    __tablename__ = "agent_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    installation_id: Mapped[int] = mapped_column(BigInteger)
    repo: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))  # request | handoff | inform | result | escalate
    sender: Mapped[str] = mapped_column(String(64))
    addressee: Mapped[str] = mapped_column(String(128))  # an agent's name or a role, COE:ROLE
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    causation: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    hops: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[Any] = mapped_column(JSON)
    deadline: Mapped[datetime | None]
    handoff_id: Mapped[int | None] = mapped_column(BigInteger)  # a handoff's record in `handoffs`
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_agent_messages_key", "installation_id", "key", unique=True),
        Index("ix_agent_messages_created", "created_at"),
        Index("ix_agent_messages_repo_created", "repo", "created_at"),
    )


class BreakerTrip(Base):
    """The LLM circuit breaker opened (agents/breaker.py): recorded once, by the process that opened it."""

    __tablename__ = "llm_breaker_trips"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # opened (from closed) | trial_failed
    failures: Mapped[int] = mapped_column(Integer)  # calls failing in a row when it opened
    cooldown_s: Mapped[float] = mapped_column(Float)


# --------------------------------------------------------------------------- the Context API


class ApiToken(Base):
    """A Context API bearer token, `wao_<id>_<secret>`: only the secret's SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    job_id: Mapped[str | None] = mapped_column(String(64))
    repo: Mapped[str | None] = mapped_column(String(256))  # OWNER/NAME: the only repository it reaches
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class OidcExchange(Base):
    """An Actions OIDC token already traded for a job token (by its `jti`), kept until it expires:
    one OIDC token buys one job token."""

    __tablename__ = "oidc_exchanges"

    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the OIDC token's expiry, with the verifier's leeway


class ScheduleLease(Base):
    """A periodic job the app runs (`waooaw deliveries recover`): which process holds it until when, so that
    of several processes one runs it each time, and when a run last finished, where the next one starts."""

    __tablename__ = "schedule_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class TaskAssignment(Base):
    """A CoE coordinator's task and the one agent Responsible for it (agents/coordination/).

    The unique key (installation, repository, CoE, task key) is the lock: of two coordinators or two
    workers routing one task, one inserts the row and assigns; the other finds it and assigns nothing.
    `state` goes assigned → delivered (the Responsible's result) → done (the Accountable's sign-off),
    or back to assigned when the Accountable refuses the delivered work; one past `deadline` and not
    done is escalated once (`escalated_at`)."""

    __tablename__ = "task_assignments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)
    repo: Mapped[str] = mapped_column(String(256))
    coe: Mapped[str] = mapped_column(String(64))
    task_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))  # the RACI matrix's task kind
    responsible: Mapped[str] = mapped_column(String(128))  # an agent's name, or a role no agent answers to
    accountable: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # assigned | delivered | done
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    delivery_id: Mapped[str] = mapped_column(String(64))  # the run that assigned it (its rerun assigns it again)
    issue_number: Mapped[int | None] = mapped_column(Integer)
    pull_number: Mapped[int | None] = mapped_column(Integer)  # the merged pull request that closed its issue
    release: Mapped[str | None] = mapped_column(String(128))  # the release (tag) that shipped that pull request
    deadline: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("uq_task_assignments_key", "installation_id", "repo", "coe", "task_key", unique=True),
        Index("ix_task_assignments_load", "installation_id", "repo", "responsible", "state"),
        Index("ix_task_assignments_deadline", "state", "deadline"),
    )
