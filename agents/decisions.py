"""The decision ladder: deterministic → cached → LLM, and the ledger every decision goes to.

    ladder = DecisionLadder(store, decision_cache(store, redis_url), llm,
                            LedgerOwner(repo="octo/app", delivery_id=event.delivery_id, installation_id=42),
                            budgets=BudgetPolicy(repo_daily_usd=1.0, installation_monthly_usd=50.0))
    decision = await ladder.decide(
        "wowvision", "arch.no-sql-in-views", "2", hunk_text,
        deterministic=lambda text: None,          # a verdict, or None when rules cannot settle it
        llm_request=LLMRequest(system=POLICY, instructions="Does this hunk …?", schema=Finding),
    )
    if decision.settled: ...                      # decision.verdict is a Finding
    else: ...                                     # skipped or error: report it as such, never as passed

1. **deterministic** — the callable gets the raw input text and returns a verdict or None.
2. **cached** — key = sha256(whose, rule id, rule version, sha256 of the sanitised input).
   Redis (`waooaw:decision:<key>`, 30-day TTL) when given, else the `decision_cache` table.
   Only LLM verdicts are cached. Change the prompt or schema of a rule → bump its version.
   "Whose" is the installation: one tenant's verdict never answers another's, nor can one
   tenant plant a verdict for another. Only when the operator opts in (the cache's
   `shares_public`) and the repository is public do verdicts go to, and come from, one
   cache shared by every installation: a public input is the same question for everyone.
3. **LLM** — `LLMClient.ask` with the sanitised input inside `<untrusted_input>` tags after
   the request's instructions, inside the budget left; its verdict is then cached.

Every decision is written to the ledger (agents/ledger.py) with its rung, latency, tokens,
cost, repo, delivery/job and input hash — skipped ones too (rung "skipped": no API key, budget
spent, breaker open) and failed ones (rung "llm", status "error": malformed answer twice,
API unavailable). The budget of a call is the tightest limit of its BudgetPolicy left
(agents/budgets.py: per repository, installation and agent, by day and month, and per job),
read back from the ledger, so limits hold across processes and restarts.
Concurrent processes may each pass the check before either records its cost: the
overshoot is bounded by one call's worst case per concurrent call.

The LLMClient (its breaker) and the cache are meant to live as long as the process; a
ladder is cheap and made per event or job, for its LedgerOwner.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import redis.asyncio as aioredis
import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from agents.budgets import BudgetPolicy, budget_for
from agents.ledger import Entry, EntryStatus, LedgerOwner, Rung, record_entries
from agents.llm import Budget, LLMClient, LLMError, LLMNotConfigured, sanitise, untrusted
from agents.pricing import TokenUsage
from agents.store.db import Store
from agents.store.tables import DecisionCacheEntry, utcnow

log = structlog.get_logger(__name__)

V = TypeVar("V")
S = TypeVar("S", bound=BaseModel)

REDIS_PREFIX = "waooaw:decision:"
DEFAULT_CACHE_TTL = timedelta(days=30)
# An LLMError with one of these reasons means no request reached the API.
_NOT_CALLED = {"llm_not_configured", "budget", "breaker_open"}


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class LLMRequest(Generic[S]):
    """How rung 3 asks: `system` is the stable (prompt-cached) rule prompt, `instructions`
    the task; the sanitised input follows them inside <untrusted_input> tags."""

    system: str
    schema: type[S]
    instructions: str = ""
    max_tokens: int = 1024
    # The input already puts what came from outside inside <untrusted_input> tags, value by value
    # (a spec agent's rendered instructions): it is sent as it is, not wrapped whole.
    tagged: bool = False


@dataclass(frozen=True)
class LadderDecision(Generic[V]):
    """One decision as the ladder made it (and as the ledger records it)."""

    agent: str
    rule_id: str
    rule_version: str
    rung: Rung
    status: EntryStatus
    verdict: V | None
    input_hash: str
    latency_ms: float
    # Why it is skipped or an error: llm_not_configured, budget, breaker_open, unsettled,
    # malformed, unavailable, rejected.
    reason: str | None = None
    detail: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @property
    def settled(self) -> bool:
        return self.status == "settled"


def input_hash(text: str) -> str:
    """The hash of what the model would see: the sanitised input."""
    return hashlib.sha256(sanitise(text).encode()).hexdigest()


SHARED = "public"  # whose the verdicts of the shared cache are (an installation's are `installation:<id>`)


def decision_key(whose: str, rule_id: str, rule_version: str, digest: str) -> str:
    return hashlib.sha256(f"{whose}\x00{rule_id}\x00{rule_version}\x00{digest}".encode()).hexdigest()


# ------------------------------------------------------------------ the cache rung


class DecisionCache(Protocol):
    # The operator's opt-in (WAOOAW_DECISION_CACHE_SHARED): verdicts on public repositories
    # are shared by every installation.
    shares_public: bool

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, rule: str, outcome: dict[str, Any], installation_id: int | None) -> None:
        """`installation_id`: whose verdict it is, None for the shared cache."""
        ...

    async def aclose(self) -> None: ...


class RedisDecisionCache:
    def __init__(
        self,
        client: aioredis.Redis,
        ttl: timedelta = DEFAULT_CACHE_TTL,
        *,
        owns_client: bool = False,
        shares_public: bool = False,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.shares_public = shares_public
        self._owns_client = owns_client

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self.client.get(REDIS_PREFIX + key)
        return json.loads(raw) if raw is not None else None

    async def put(self, key: str, rule: str, outcome: dict[str, Any], installation_id: int | None) -> None:
        # The key hashes the installation in; the TTL is the retention.
        await self.client.set(REDIS_PREFIX + key, json.dumps(outcome), ex=int(self.ttl.total_seconds()))

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


class DbDecisionCache:
    """The `decision_cache` table; expired entries read as misses (and are overwritten)."""

    def __init__(
        self,
        store: Store,
        ttl: timedelta = DEFAULT_CACHE_TTL,
        clock: Callable[[], datetime] = utcnow,
        *,
        shares_public: bool = False,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.shares_public = shares_public

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: str) -> dict[str, Any] | None:
        with self.store.reading() as session:
            return session.scalar(
                select(DecisionCacheEntry.outcome).where(
                    DecisionCacheEntry.key == key, DecisionCacheEntry.expires_at > self.clock()
                )
            )

    async def put(self, key: str, rule: str, outcome: dict[str, Any], installation_id: int | None) -> None:
        await asyncio.to_thread(self._put, key, rule, outcome, installation_id)

    def _put(self, key: str, rule: str, outcome: dict[str, Any], installation_id: int | None) -> None:
        now = self.clock()
        values = {
            "key": key,
            "installation_id": installation_id,
            "rule": rule,
            "outcome": outcome,
            "created_at": now,
            "expires_at": now + self.ttl,
        }
        statement = self.store.insert(DecisionCacheEntry).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={k: statement.excluded[k] for k in ("rule", "outcome", "created_at", "expires_at")},
        )
        with self.store.session() as session:
            session.execute(statement)

    async def aclose(self) -> None:
        return None


def decision_cache(
    store: Store,
    redis: str | aioredis.Redis | None = None,
    ttl: timedelta = DEFAULT_CACHE_TTL,
    *,
    shares_public: bool = False,
) -> DecisionCache:
    """Redis (a URL or a client) when there is one, else the database."""
    if redis is None:
        return DbDecisionCache(store, ttl, shares_public=shares_public)
    if isinstance(redis, str):
        return RedisDecisionCache(aioredis.Redis.from_url(redis), ttl, owns_client=True, shares_public=shares_public)
    return RedisDecisionCache(redis, ttl, shares_public=shares_public)


# ------------------------------------------------------------------ the ladder


class DecisionLadder:
    def __init__(
        self,
        store: Store,
        cache: DecisionCache | None,
        llm: LLMClient | None,
        ledger_owner: LedgerOwner,
        *,
        budgets: BudgetPolicy = BudgetPolicy(),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.cache = cache if cache is not None else DbDecisionCache(store, clock=clock)
        self.llm = llm
        self.owner = ledger_owner
        self.budgets = budgets
        self.clock = clock
        self._pending: list[Entry] = []
        self._batch_depth = 0

    async def decide(
        self,
        agent: str,
        rule_id: str,
        rule_version: str | int,
        input_text: str,
        deterministic: Callable[[str], V | None] | None = None,
        llm_request: LLMRequest[Any] | None = None,
    ) -> LadderDecision[Any]:
        if deterministic is None and llm_request is None:
            raise ValueError(f"{rule_id}: a decision needs a deterministic rule, an LLM request, or both")
        started = time.perf_counter()
        version = str(rule_version)
        digest = input_hash(input_text)

        def made(rung: Rung, status: EntryStatus, verdict: Any = None, **extra: Any) -> LadderDecision[Any]:
            return LadderDecision(
                agent, rule_id, version, rung, status, verdict, digest, (time.perf_counter() - started) * 1000, **extra
            )

        if deterministic is not None:
            verdict = deterministic(input_text)
            if verdict is not None:
                return await self._record(made("deterministic", "settled", verdict))
        if llm_request is None:
            return await self._record(
                made(
                    "skipped",
                    "skipped",
                    reason="unsettled",
                    detail="no rule settled it and the rule has no LLM request",
                )
            )

        whose, owner = self._whose()
        key = decision_key(whose, rule_id, version, digest)
        hit = await self._cached(key, llm_request.schema)
        if hit is not None:
            return await self._record(made("cached", "settled", hit))

        if self.llm is None or not self.llm.configured:
            return await self._record(
                made(
                    "skipped",
                    "skipped",
                    reason=LLMNotConfigured.reason,
                    detail="ANTHROPIC_API_KEY is not set: the LLM rung is off",
                )
            )
        budget = await asyncio.to_thread(self._budget, agent)
        material = input_text if llm_request.tagged else untrusted(input_text)
        prompt = f"{llm_request.instructions}\n\n{material}".lstrip()
        try:
            answer = await self.llm.ask(
                llm_request.system, prompt, llm_request.schema, max_tokens=llm_request.max_tokens, budget=budget
            )
        except LLMError as exc:
            skipped = exc.reason in _NOT_CALLED
            # A retry stopped by the budget still spent its first attempt: that row is an LLM row.
            rung: Rung = "skipped" if skipped and exc.cost_usd == 0 else "llm"
            return await self._record(
                made(
                    rung,
                    "skipped" if skipped else "error",
                    reason=exc.reason,
                    detail=str(exc),
                    **_spend(exc.usage, exc.cost_usd),
                ),
                exc.calls,
                model=self.llm.model,
                usage=asdict(exc.usage),
            )
        verdict = answer.data.model_dump(mode="json")
        await self._remember(key, rule_id, {"verdict": verdict, "model": answer.model, "rule_version": version}, owner)
        return await self._record(
            made("llm", "settled", answer.data, **_spend(answer.usage, answer.cost_usd)),
            answer.attempts,
            model=answer.model,
            attempts=answer.attempts,
            usage=asdict(answer.usage),
        )

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Write the ledger rows of the decisions made inside the block in one transaction when
        it ends (rows with a cost are still written at once: budgets read them)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                await self.flush()

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if rows:
            await asyncio.to_thread(self._write, rows)

    # ------------------------------------------------------------ internals

    def _whose(self) -> tuple[str, int | None]:
        """Whose cached verdicts this ladder reads and writes, and the installation they belong to:
        its installation's, or the shared ones (None) when the operator opted in and the repository
        is public."""
        if self.cache.shares_public and self.owner.public:
            return SHARED, None
        return f"installation:{self.owner.installation_id}", self.owner.installation_id

    async def _cached(self, key: str, schema: type[BaseModel]) -> BaseModel | None:
        try:
            entry = await self.cache.get(key)
        except Exception as exc:  # noqa: BLE001 — the cache is an optimisation: a broken one is a miss
            log.warning("decision_cache_unreadable", error=repr(exc))
            return None
        if entry is None:
            return None
        try:
            return schema.model_validate(entry["verdict"])
        except (KeyError, TypeError, ValidationError):
            log.warning("decision_cache_entry_stale", key=key)  # the schema changed without a version bump
            return None

    async def _remember(self, key: str, rule_id: str, outcome: dict[str, Any], owner: int | None) -> None:
        try:
            await self.cache.put(key, rule_id, outcome, owner)
        except Exception as exc:  # noqa: BLE001 — a verdict we could not cache is still a verdict
            log.warning("decision_cache_unwritable", error=repr(exc))

    def _budget(self, agent: str) -> Budget:
        with self.store.reading() as session:
            return budget_for(session, self.budgets, self.owner, agent, self.clock())

    async def _record(self, decision: LadderDecision[Any], model_calls: int = 0, **extra: Any) -> LadderDecision[Any]:
        verdict = (
            decision.verdict.model_dump(mode="json") if isinstance(decision.verdict, BaseModel) else decision.verdict
        )
        outcome = {"status": decision.status, "rule_version": decision.rule_version, "verdict": verdict}
        if decision.reason:
            outcome |= {"reason": decision.reason, "detail": (decision.detail or "")[:1000]}
        self._pending.append(
            Entry(
                decision.agent,
                decision.rule_id,
                decision.rung,
                decision.status,
                input_hash=decision.input_hash,
                outcome=outcome | extra,
                latency_ms=decision.latency_ms,
                tokens_in=decision.tokens_in,
                tokens_out=decision.tokens_out,
                cost_usd=decision.cost_usd,
                model_calls=model_calls,
                at=self.clock(),
            )
        )
        if self._batch_depth == 0 or decision.cost_usd > 0:
            await self.flush()
        return decision

    def _write(self, entries: list[Entry]) -> None:
        record_entries(self.store, self.owner, entries)


def _spend(usage: TokenUsage, cost_usd: float) -> dict[str, Any]:
    return {"tokens_in": usage.prompt_tokens, "tokens_out": usage.output_tokens, "cost_usd": cost_usd}
