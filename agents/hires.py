"""An agent's hired identity on a repository: hired or not, its state there, its budget there.

The marketplace identity is the agent itself (its class, or the spec it was built from):
one per catalogue. The hired identity is one `agent_hires` row per installation,
repository and agent (and the agent's contexts there, which are keyed the same way):

- hired: what the default branch's `.github/waooaw.yml` says (`agents.enable` / `agents.disable`,
  written by the Hiring agent when that file changes); not listed, the agent's default — off
  for an agent that `hire_required` (every spec agent), on for the others;
- state: active, paused or retired there (`waooaw agents pause|resume|retire NAME --repo`).
  The state everywhere (`agent_states`, `waooaw agents pause NAME`) applies where the
  repository sets none; a repository's own state wins over it, except that an agent
  retired everywhere is retired on every repository.

An agent wakes on a repository only when it is hired there and active there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Boolean, CompoundSelect, Float, Select, bindparam, cast, literal, null, select, union_all
from sqlalchemy.orm import Session

from agents.store.db import dialect_insert
from agents.store.tables import NO_INSTALLATION, AgentHire, AgentState, utcnow

if TYPE_CHECKING:
    from agents.base import WowAgent


class Lifecycle(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


@dataclass(frozen=True)
class HireRow:
    """What the store holds for one agent on one repository (nothing: all None)."""

    hired: bool | None = None
    state: Lifecycle | None = None
    budget_usd: float | None = None


@dataclass(frozen=True)
class Standing:
    """An agent's hired identity on one repository, resolved."""

    hired: bool
    hired_by: Literal["config", "default"]  # the repository's config named it, or its default applies
    state: Lifecycle
    state_set: Literal["repo", "everywhere"]  # where the state that applies was set
    budget_usd: float | None = None

    @property
    def wakes(self) -> bool:
        return self.hired and self.state is Lifecycle.ACTIVE


def resolve(agent: type[WowAgent], everywhere: Lifecycle, row: HireRow) -> Standing:
    hired = row.hired if row.hired is not None else not agent.hire_required
    hired_by: Literal["config", "default"] = "config" if row.hired is not None else "default"
    if row.state is not None and everywhere is not Lifecycle.RETIRED:
        return Standing(hired, hired_by, row.state, "repo", row.budget_usd)
    return Standing(hired, hired_by, everywhere, "everywhere", row.budget_usd)


def installation_key(installation_id: int | None) -> int:
    """Where a repository's rows are kept when no App installation is known (token auth)."""
    return installation_id if installation_id is not None else NO_INSTALLATION


@functools.cache
def _reading(of_repo: bool) -> Select[Any] | CompoundSelect[Any]:
    """The one query of `read`, built once per shape: on the wake path building it cost more than running it.

    It reads every row of the repository rather than those of some agents: one statement the
    driver prepares once, where a list of names made a new statement for each length.
    """
    everywhere = select(
        AgentState.agent,
        AgentState.state,
        cast(null(), Boolean).label("hired"),
        cast(null(), Float).label("budget_usd"),
        literal(True).label("everywhere"),
    )
    if not of_repo:
        return everywhere
    here = select(
        AgentHire.agent, AgentHire.state, AgentHire.hired, AgentHire.budget_usd, literal(False).label("everywhere")
    ).where(AgentHire.installation_id == bindparam("installation"), AgentHire.repo == bindparam("repo"))
    return union_all(everywhere, here)


def read(
    session: Session, installation_id: int | None, repo: str | None
) -> tuple[dict[str, Lifecycle], dict[str, HireRow]]:
    """The states everywhere and the rows of `repo`, in one round trip."""
    parameters = {"installation": installation_key(installation_id), "repo": repo}
    states: dict[str, Lifecycle] = {}
    rows: dict[str, HireRow] = {}
    # Core, on the session's connection: the ORM adds nothing to plain rows.
    for agent, state, hired, budget, is_everywhere in session.connection().execute(
        _reading(repo is not None), parameters
    ):
        if is_everywhere:
            states[agent] = Lifecycle(state)
        else:
            rows[agent] = HireRow(hired, Lifecycle(state) if state is not None else None, budget)
    return states, rows


def standings(
    session: Session, installation_id: int | None, repo: str | None, agents: Sequence[type[WowAgent]]
) -> dict[str, Standing]:
    """Each agent's hired identity on `repo` (with no repository: its default, in its state everywhere)."""
    states, rows = read(session, installation_id, repo)
    return {
        agent.name: resolve(agent, states.get(agent.name, Lifecycle.ACTIVE), rows.get(agent.name, HireRow()))
        for agent in agents
    }


def set_state(session: Session, installation_id: int | None, repo: str, agent: str, state: Lifecycle | None) -> None:
    """The agent's state on one repository (None: as everywhere)."""
    _upsert(session, installation_id, repo, {agent: {"state": state.value if state is not None else None}})


def apply_config(
    session: Session,
    installation_id: int | None,
    repo: str,
    enable: Iterable[str],
    disable: Iterable[str],
    budgets: Mapping[str, float],
) -> None:
    """Make the rows of `repo` say what its config's `agents` section says; states set by the CLI stay."""
    key = installation_key(installation_id)
    listed = select(AgentHire.agent).where(AgentHire.installation_id == key, AgentHire.repo == repo)
    unlisted = {"hired": None, "budget_usd": None}
    wanted: dict[str, dict[str, object]] = {name: dict(unlisted) for name in session.scalars(listed)}
    for name in enable:
        wanted[name] = {"hired": True, "budget_usd": None}
    for name in disable:
        wanted[name] = {"hired": False, "budget_usd": None}
    for name, usd in budgets.items():
        wanted.setdefault(name, {"hired": None})["budget_usd"] = usd
    _upsert(session, installation_id, repo, wanted)


def _upsert(
    session: Session, installation_id: int | None, repo: str, values: Mapping[str, Mapping[str, object]]
) -> None:
    key = installation_key(installation_id)
    insert = dialect_insert(session.get_bind().dialect.name, AgentHire)
    for agent, columns in sorted(values.items()):  # one order in every process: no deadlock between two
        row = {"installation_id": key, "repo": repo, "agent": agent, "updated_at": utcnow(), **columns}
        session.execute(
            insert.values(row).on_conflict_do_update(
                index_elements=["installation_id", "repo", "agent"],
                set_={column: row[column] for column in (*columns, "updated_at")},
            )
        )


def overrides(session: Session, agent: str) -> list[tuple[int, str, Lifecycle]]:
    """The repositories where `agent` has a state of its own: (installation, repository, state)."""
    found = session.execute(
        select(AgentHire.installation_id, AgentHire.repo, AgentHire.state)
        .where(AgentHire.agent == agent, AgentHire.state.is_not(None))
        .order_by(AgentHire.repo, AgentHire.installation_id)
    )
    return [(installation, repo, Lifecycle(state)) for installation, repo, state in found if state is not None]


def active_somewhere(session: Session) -> set[str]:
    """Agents active on some repository by a state of their own (whatever their state everywhere)."""
    return set(session.scalars(select(AgentHire.agent).where(AgentHire.state == Lifecycle.ACTIVE.value).distinct()))
