"""The worker: take a delivery off the bus, wake the agents that want it, publish their outputs.

Exactly-once in effect: an agent whose run on a delivery already succeeded is not
run again when the delivery comes back (retry, reclaim after a crash, restart), and
outputs are published idempotently by marker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import orjson
import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session

from agents.base import AgentEnv, WowAgent
from agents.decisions import DecisionCache
from agents.events import Event
from agents.llm import LLMClient
from agents.messages import EVENT as MESSAGE_EVENT
from agents.messages import addressed_to
from agents.outputs import Message, Output
from agents.ports import RepoReader
from agents.registry import Registry
from agents.store.db import Store
from agents.store.tables import AgentRun, InboxRecord, Installation, utcnow
from bot import metrics, tenancy, tracing
from bot.bus import BusMessage, Deferred, EventBus, LocalBus
from bot.coordination import escalation_schedule
from bot.inbox import FINISHED, Inbox, InboxStatus
from bot.messages import Messenger, refuse_unsendable
from bot.publish import Origin, Publisher, PublishError
from bot.ratelimit import GitHubRateLimited
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.github import GitHubClients

log = structlog.get_logger(__name__)


class AgentsFailed(Exception):
    """Some agents failed on this delivery; the bus will deliver it again."""


@dataclass(frozen=True)
class RunPlan:
    event: Event
    agents: list[type[WowAgent]]
    # The USD a day each agent's hired identity may spend on this repository (`agents.budgets` in the
    # config), for those that have one.
    budgets: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentResult:
    agent: str
    status: str  # ok | error | timeout | deferred (GitHub's rate limit: done on a later delivery)
    error: str | None = None
    retry_after: float = 0.0  # deferred: seconds until GitHub takes the call


@dataclass(frozen=True)
class FinishedRun:
    """An agent's run, done: what it came to, and its `agent_runs` row still to be closed."""

    result: AgentResult
    run_id: int
    duration: float  # seconds


@dataclass(frozen=True)
class Outcome:
    """What a delivery came to once all its agents ran: its inbox status, and what the bus is told."""

    status: InboxStatus
    error: str | None = None  # the inbox's error column
    retry: Exception | None = None  # raised to the bus: AgentsFailed (again later) or Deferred (GitHub's limit)

    @classmethod
    def of(cls, results: Sequence[AgentResult]) -> Outcome:
        failed = [result for result in results if result.status not in ("ok", "deferred")]
        if failed:
            error = "; ".join(f"{result.agent}: {result.status} {result.error or ''}".strip() for result in failed)
            return cls(InboxStatus.FAILED, error, AgentsFailed(error))
        deferred = [result for result in results if result.status == "deferred"]
        if deferred:
            # Only GitHub's rate limit stood in the way: the bus brings the delivery back when it
            # allows, without counting this attempt; the agents that finished are not run again.
            reason = "; ".join(f"{result.agent}: {result.error}" for result in deferred)
            retry = Deferred(max(result.retry_after for result in deferred), reason)
            return cls(InboxStatus.QUEUED, f"deferred: {reason}", retry)
        return cls(InboxStatus.DONE)


class Worker:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        registry: Registry,
        bus: EventBus,
        publisher: Publisher,
        reader_for: Callable[[Event], RepoReader | None] = lambda event: None,
        llm: LLMClient | None = None,
        decision_cache: DecisionCache | None = None,
        github: GitHubClients | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.bus = bus
        self.publisher = publisher
        self.github = github  # whose rate limits say when an installation's agents can act
        self.inbox = Inbox(store)
        self.messenger = Messenger(store, bus)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.env = AgentEnv(
            store=store,
            registry=registry,
            queue_depth=bus.depth,
            reader_for=reader_for,
            llm=llm,
            decision_cache=decision_cache,
            budgets=settings.llm_budgets,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.recover()
        sweeper = None if isinstance(self.bus, LocalBus) else asyncio.create_task(self._sweep(stop))
        breaker = self.env.llm.breaker if self.env.llm is not None else None
        gauges = asyncio.create_task(metrics.follow(self.bus, breaker, stop))
        deadlines = asyncio.create_task(escalation_schedule(self.store, self.bus, stop))
        try:
            await self.bus.consume(self.handle, self.bury, stop)
        finally:
            for task in (sweeper, gauges, deadlines):
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                *(task for task in (sweeper, gauges, deadlines) if task is not None), return_exceptions=True
            )

    async def recover(self) -> int:
        """Re-queue deliveries recorded but not on the bus and never finished.

        That is what a crash leaves: the local bus loses its queue with the process, and
        a web process can die between committing a delivery and publishing it. With
        Redis only rows older than the visibility timeout count, so a delivery being
        published right now is not mistaken for a lost one.
        """
        grace = (
            timedelta(0) if isinstance(self.bus, LocalBus) else timedelta(seconds=self.settings.bus_visibility_timeout)
        )
        unfinished = await asyncio.to_thread(self.inbox.unfinished, grace)
        on_bus = await self.bus.queued_ids() if unfinished else set()
        ids = [delivery_id for delivery_id in unfinished if delivery_id not in on_bus]
        for delivery_id in ids:
            await self.bus.publish(delivery_id)
        if ids:
            log.info("worker.recovered", count=len(ids))
        return len(ids)

    async def _sweep(self, stop: asyncio.Event) -> None:
        """With Redis, look for stranded deliveries once per visibility timeout (not a poll for work)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.bus_visibility_timeout)
            except TimeoutError:
                try:
                    await self.recover()
                except Exception:  # a failed sweep is tried again next period
                    log.exception("worker.sweep_failed")

    async def handle(self, message: BusMessage) -> None:
        # The webhook's trace goes on here, on whichever machine; log lines name the delivery and the trace.
        attributes: dict[str, str | int] = {"waooaw.delivery": message.delivery_id, "waooaw.attempt": message.attempt}
        with (
            tracing.continued(message.trace, "waooaw.delivery", **attributes),
            # installation and repo are known once the delivery is read; bound here, they end with it.
            structlog.contextvars.bound_contextvars(delivery=message.delivery_id, installation=None, repo=None),
        ):
            await self._handle(message)

    async def _handle(self, message: BusMessage) -> None:
        plan = await asyncio.to_thread(self._plan, message)
        if plan is None:
            return
        structlog.contextvars.bind_contextvars(installation=plan.event.installation_id, repo=plan.event.repo)
        if plan.agents and (pause := await self._paused_for(plan.event)) > 0:
            # GitHub holds every call of the installation back longer than a call may wait: the
            # agents would only be deferred, each run recorded. Back to the bus for the pause's end.
            log.info("worker.deferred_paused", retry_after=round(pause, 1))
            raise Deferred(pause, f"GitHub's rate limit holds installation {plan.event.installation_id} back")
        outcome = await self._run_agents(plan, message.attempt)
        if outcome.retry is not None:
            raise outcome.retry

    async def _paused_for(self, event: Event) -> float:
        """Seconds GitHub's rate limit holds the event's installation back, when more than a call may wait."""
        if self.github is None:
            return 0.0
        pause = await self.github.paused_for(event.installation_id)
        return pause if pause > self.github.limiter.budget else 0.0

    async def _run_agents(self, plan: RunPlan, attempt: int) -> Outcome:
        """Run the agents side by side and close each run's row as it ends; the last one's is closed
        together with the delivery's inbox status, in one transaction."""
        delivery_id = plan.event.delivery_id
        if not plan.agents:
            await asyncio.to_thread(self.inbox.mark, delivery_id, InboxStatus.DONE, attempts=attempt)
            return Outcome(InboxStatus.DONE)
        runs = [
            asyncio.ensure_future(self._run_agent(agent, self._env_for(agent, plan), plan.event, attempt))
            for agent in plan.agents
        ]
        results: list[AgentResult] = []
        outcome = None
        try:
            for next_run in asyncio.as_completed(runs):
                run = await next_run
                results.append(run.result)
                outcome = Outcome.of(results) if len(results) == len(runs) else None
                await asyncio.to_thread(self._finish_run, run, delivery_id, attempt, outcome)
        finally:
            for task in runs:
                task.cancel()  # a no-op once they are done; otherwise the delivery's handling was cancelled
        assert outcome is not None  # the last run's
        return outcome

    async def bury(self, message: BusMessage, reason: str) -> None:
        metrics.dead_letters.inc()
        await asyncio.to_thread(
            self.inbox.mark, message.delivery_id, InboxStatus.DEAD, attempts=message.attempt, error=reason
        )

    def _plan(self, message: BusMessage) -> RunPlan | None:
        """Everything decided before agents run: it is the wake latency, so reads only.

        Load the delivery, apply tenancy, and choose the agents that should wake: named by the
        routing index, hired and active on the repository, not yet succeeded on it, not the
        author of a self-caused event.
        """
        with self.store.reading() as session:
            # One round trip: the delivery, its installation's state, the agents that already succeeded on it.
            rows = session.execute(
                select(
                    InboxRecord.delivery_id,
                    InboxRecord.event,
                    InboxRecord.body,
                    InboxRecord.status,
                    InboxRecord.received_at,
                    InboxRecord.repo,
                    InboxRecord.installation_id,
                    Installation.status,
                    AgentRun.agent,
                )
                .outerjoin(Installation, Installation.id == InboxRecord.installation_id)
                .outerjoin(AgentRun, and_(AgentRun.delivery_id == InboxRecord.delivery_id, AgentRun.status == "ok"))
                .where(InboxRecord.delivery_id == message.delivery_id)
            ).all()
            if not rows:
                log.warning("worker.unknown_delivery", delivery=message.delivery_id)
                return None
            installation_status: str | None  # outer-joined: None for an installation we have not heard of
            delivery_id, name, body, status, received_at, repo, installation_id, installation_status, _ = rows[0]
            if status in FINISHED:
                return None
            event = Event.from_payload(
                delivery_id,
                name,
                orjson.loads(body),
                app_id=self.settings.app_id,
                bot_user_id=self.settings.app_bot_user_id,
                received_at=received_at,
            )
            if (event.repo, event.installation_id) != (repo, installation_id):
                # The inbox had to fit the payload's repository or installation to its columns: no
                # GitHub delivery names such a one, and acting on either form could reach another tenant.
                log.warning("worker.unfit_identity", delivery=delivery_id)
                return RunPlan(event, [])
            if tenancy.handles(event.name, event.action):
                with self.store.session() as writing:
                    tenancy.apply(writing, event)
                    installation_status = tenancy.status(writing, event.installation_id)
            if installation_status not in (None, "active"):
                log.info("worker.installation_stopped", delivery=delivery_id, installation=event.installation_id)
                return RunPlan(event, [])
            succeeded = {agent for *_, agent in rows if agent is not None}
            return self._agents_to_run(session, event, succeeded)

    def _agents_to_run(self, session: Session, event: Event, succeeded: set[str]) -> RunPlan:
        """The agents the routing index names for the event's kind that are hired and active on its
        repository (their states read in one round trip, none when the index names no agent), and
        whose should_wake agrees; with their budgets there."""
        candidates = [agent for agent in self.registry.candidates(event) if agent.name not in succeeded]
        if not candidates:
            return RunPlan(event, [])
        standings = self.registry.standings(session, event.installation_id, event.repo, candidates)
        chosen = []
        for agent in candidates:
            if not standings[agent.name].wakes:
                continue
            if event.name == MESSAGE_EVENT and not addressed_to(event, agent.name, agent.roles):
                continue  # a message wakes its addressee alone, whatever another agent's should_wake says
            if event.caused_by_app and event.origin_agent in (None, agent.name):
                # Our own App made this: never wake the agent that made it (no loops).
                # When the marker does not say which agent, wake none of them.
                continue
            try:
                wants = agent(self.env).should_wake(event)
            except Exception as exc:  # noqa: BLE001 - one agent's bug must not stop the others
                log.error("worker.should_wake_failed", agent=agent.name, delivery=event.delivery_id, error=repr(exc))
                continue
            if wants:
                chosen.append(agent)
        budgets = {agent.name: budget for agent in chosen if (budget := standings[agent.name].budget_usd) is not None}
        return RunPlan(event, chosen, budgets)

    def _env_for(self, agent: type[WowAgent], plan: RunPlan) -> AgentEnv:
        """What the platform lends this agent on this event: the worker's, held to its hired identity's budget."""
        budget = plan.budgets.get(agent.name)
        if budget is None:
            return self.env
        return replace(self.env, budgets=self.env.budgets.lowered(hire_daily_usd=budget))

    async def _run_agent(self, agent_class: type[WowAgent], env: AgentEnv, event: Event, attempt: int) -> FinishedRun:
        # Each agent runs in its own task (gather): what is bound here is its own.
        structlog.contextvars.bind_contextvars(agent=agent_class.name)
        metrics.observe_wake(agent_class.name, event.received_at)
        with tracing.tracer().start_as_current_span("waooaw.agent", attributes={"waooaw.agent": agent_class.name}):
            return await self._run_agent_traced(agent_class, env, event, attempt)

    async def _run_agent_traced(
        self, agent_class: type[WowAgent], env: AgentEnv, event: Event, attempt: int
    ) -> FinishedRun:
        # The run is recorded as started while the agent already works: the commit is
        # not on the wake path. It is awaited before the run is handed back to be closed.
        recording = asyncio.ensure_future(
            asyncio.to_thread(self._start_run, agent_class.name, event.delivery_id, attempt)
        )
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._wake_execute_publish(agent_class, env, event), self.settings.agent_timeout)
            result = AgentResult(agent_class.name, "ok")
        except TimeoutError:
            result = AgentResult(agent_class.name, "timeout", f"no result within {self.settings.agent_timeout:g} s")
        except Exception as exc:  # isolate: record it, let the bus retry
            if (limited := _rate_limited(exc)) is not None:
                log.info(
                    "worker.agent_deferred",
                    agent=agent_class.name,
                    delivery=event.delivery_id,
                    retry_after=round(limited.retry_after, 1),
                )
                result = AgentResult(agent_class.name, "deferred", str(limited), limited.retry_after)
            else:
                log.exception("worker.agent_failed", agent=agent_class.name, delivery=event.delivery_id)
                result = AgentResult(agent_class.name, "error", repr(exc)[:2000])
        duration = time.perf_counter() - started
        run_id = await recording
        metrics.agent_runs.labels(agent_class.name, result.status).inc()
        metrics.agent_run_seconds.labels(agent_class.name).observe(duration)
        log.info("worker.agent_finished", status=result.status, attempt=attempt, duration_ms=round(duration * 1000, 1))
        return FinishedRun(result, run_id, duration)

    async def _wake_execute_publish(self, agent_class: type[WowAgent], env: AgentEnv, event: Event) -> None:
        agent = agent_class(env)
        await agent.wake_up(event)
        outputs = await agent.execute(event)
        _refuse_foreign(agent.name, outputs, event)
        messages = [output for output in outputs if isinstance(output, Message)]
        refuse_unsendable(agent.name, messages, event)
        await self.publisher.publish(
            agent.name, [output for output in outputs if not isinstance(output, Message)], Origin.of(event)
        )
        await agent.save_context(event)
        # After the context is saved: a handoff links the sender's context as this run left it.
        await self.messenger.send(agent.name, messages, event, agent.context_key)

    def _start_run(self, agent: str, delivery_id: str, attempt: int) -> int:
        # Core statements, not the ORM: this runs beside the agent's first steps.
        with self.store.engine.begin() as connection:
            # A run still "running" here belonged to a worker that died mid-run: say so.
            connection.execute(
                update(AgentRun)
                .where(AgentRun.delivery_id == delivery_id, AgentRun.agent == agent, AgentRun.status == "running")
                .values(status="abandoned", finished_at=utcnow())
            )
            return connection.execute(
                insert(AgentRun)
                .values(
                    delivery_id=delivery_id,
                    agent=agent,
                    attempt=attempt,
                    worker=self.name,
                    status="running",
                    started_at=utcnow(),
                )
                .returning(AgentRun.id)
            ).scalar_one()

    def _finish_run(self, run: FinishedRun, delivery_id: str, attempt: int, outcome: Outcome | None) -> None:
        result = run.result
        with self.store.session() as session:
            session.execute(
                update(AgentRun)
                .where(AgentRun.id == run.run_id)
                .values(status=result.status, error=result.error, finished_at=utcnow(), duration_ms=run.duration * 1000)
            )
            if outcome is not None:
                self.inbox.mark(delivery_id, outcome.status, attempts=attempt, error=outcome.error, session=session)


def _rate_limited(exc: BaseException) -> GitHubRateLimited | None:
    """The rate limit that stopped an agent, when nothing else did: raised itself, as the cause of
    another error (githubkit wraps what a token mint inside a call raises), or behind each output
    the publisher reports."""
    if isinstance(exc, PublishError):
        found = [_rate_limited(error) for _, error in exc.errors]
        limits = [limited for limited in found if limited is not None]
        return max(limits, key=lambda limited: limited.retry_after) if len(limits) == len(found) else None
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, GitHubRateLimited):
        cause = cause.__cause__
    return cause


class ForeignOutput(Exception):
    """An agent asked to act on another repository than the one its event came from."""


def _refuse_foreign(agent: str, outputs: Sequence[Output], event: Event) -> None:
    """An event of one repository moves outputs in that repository alone: the installation's
    token reaches its other repositories too, and a tenant's event must never act on them."""
    foreign = sorted({repo for output in outputs if (repo := output.repo) is not None and repo != event.repo})
    if foreign:
        raise ForeignOutput(
            f"{agent} was woken by an event of {event.repo} and asked to act on {', '.join(foreign)}: "
            "nothing was published"
        )
