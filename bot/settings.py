"""Every environment variable WAOOAW reads, in one place."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agents.tokens import parse_ttl

if TYPE_CHECKING:
    from agents.budgets import BudgetPolicy

WEBHOOK_BODY_MAX_BYTES = 25 * 1024 * 1024  # GitHub never sends more than 25 MB
OIDC_ISSUER = "https://token.actions.githubusercontent.com"  # GitHub Actions' OIDC tokens
OIDC_AUDIENCE = "waooaw"  # what a CoE runner asks its OIDC token for, and what the app accepts
DEFAULT_GITHUB_API_URL = "https://api.github.com"
RECOVER_INTERVAL = timedelta(minutes=15)  # missed deliveries looked for, by default
REACTIONS_INTERVAL = timedelta(hours=6)  # reactions on agents' comments read, by default
CURATE_INTERVAL = timedelta(days=1)  # the Learning Curator's run over the repositories with new outcomes
SCHEDULE_INTERVAL = timedelta(hours=1)  # timer events (schedule.daily/weekly) looked for, by default
# What `waooaw setup` writes and every `waooaw` command reads, from the working directory.
ENV_FILE = Path(".env")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///./waooaw.db", alias="WAOOAW_DATABASE_URL")
    redis_url: str | None = Field(None, alias="WAOOAW_REDIS_URL")

    webhook_secret: SecretStr | None = Field(None, alias="GITHUB_WEBHOOK_SECRET")
    app_id: int | None = Field(None, alias="GITHUB_APP_ID")
    app_private_key: SecretStr | None = Field(None, alias="GITHUB_APP_PRIVATE_KEY")
    app_private_key_path: Path | None = Field(None, alias="GITHUB_APP_PRIVATE_KEY_PATH")
    # The user id of the App's bot account (`<slug>[bot]`): events it sends are our own.
    app_bot_user_id: int | None = Field(None, alias="GITHUB_APP_BOT_USER_ID")
    github_token: SecretStr | None = Field(None, alias="GITHUB_TOKEN")
    github_api_url: str = Field(DEFAULT_GITHUB_API_URL, alias="GITHUB_API_URL")
    # The longest a GitHub call waits for a rate limit (seconds); longer, its delivery goes back to the bus.
    github_wait_budget: float = Field(30.0, gt=0, alias="WAOOAW_GITHUB_WAIT_BUDGET")

    anthropic_api_key: SecretStr | None = Field(None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, alias="ANTHROPIC_BASE_URL")
    # A model priced in agents/pricing.py (claude-sonnet-4-5 is deprecated, retiring 2026-11-30).
    llm_model: str = Field("claude-sonnet-5-5", alias="WAOOAW_LLM_MODEL")
    llm_max_retries: int = Field(2, alias="WAOOAW_LLM_MAX_RETRIES")  # the SDK's own retries per call
    # Calls failing in a row (after retries) that open the breaker, and how long it stays open.
    llm_breaker_threshold: int = Field(5, alias="WAOOAW_LLM_BREAKER_THRESHOLD")
    llm_breaker_cooldown: float = Field(60.0, alias="WAOOAW_LLM_BREAKER_COOLDOWN")
    # LLM spend limits in USD (agents/budgets.py); unset: no limit of that kind. A repository's
    # `.github/waooaw.yml` may lower its daily one (`budget_usd`), never raise it. The installation's
    # and the agent's hold CoE jobs too.
    llm_repo_daily_budget_usd: float | None = Field(1.0, ge=0, alias="WAOOAW_LLM_REPO_DAILY_BUDGET_USD")
    llm_installation_daily_budget_usd: float | None = Field(
        None, ge=0, alias="WAOOAW_LLM_INSTALLATION_DAILY_BUDGET_USD"
    )
    llm_installation_monthly_budget_usd: float | None = Field(
        None, ge=0, alias="WAOOAW_LLM_INSTALLATION_MONTHLY_BUDGET_USD"
    )
    # What each agent may spend in one installation, over its repositories.
    llm_agent_daily_budget_usd: float | None = Field(None, ge=0, alias="WAOOAW_LLM_AGENT_DAILY_BUDGET_USD")
    llm_agent_monthly_budget_usd: float | None = Field(None, ge=0, alias="WAOOAW_LLM_AGENT_MONTHLY_BUDGET_USD")
    # Cached LLM verdicts are per installation; on, verdicts on public repositories are shared by all.
    decision_cache_shared: bool = Field(False, alias="WAOOAW_DECISION_CACHE_SHARED")

    api_url: str | None = Field(None, alias="WAOOAW_API_URL")
    api_token: SecretStr | None = Field(None, alias="WAOOAW_API_TOKEN")
    # Context API rate limit per token: a bucket of `burst` requests refilled at `rate` per second.
    api_rate_limit: float = Field(50.0, gt=0, alias="WAOOAW_API_RATE_LIMIT")
    api_rate_burst: int = Field(100, ge=1, alias="WAOOAW_API_RATE_BURST")
    # A CoE runner trades its GitHub Actions OIDC token for a job token (POST /api/v1/coe/token).
    oidc_issuer: str = Field(OIDC_ISSUER, alias="WAOOAW_OIDC_ISSUER")
    oidc_audience: str = Field(OIDC_AUDIENCE, alias="WAOOAW_OIDC_AUDIENCE")
    # The refs whose waooaw-coe.yml may trade its OIDC token, comma-separated, `*` a wildcard (e.g.
    # `refs/heads/main,refs/heads/release/*`); unset: the repository's default branch alone.
    oidc_workflow_refs: Annotated[tuple[str, ...], NoDecode] = Field((), alias="WAOOAW_OIDC_WORKFLOW_REFS")
    coe_token_ttl: timedelta = Field(timedelta(hours=6), alias="WAOOAW_COE_TOKEN_TTL")  # `6h`, `90m`, `1h30m`
    # The CoE's research, discovery and capability phases through the Message Batches API (half price).
    coe_batch: bool = Field(False, alias="WAOOAW_COE_BATCH")
    coe_batch_poll: float = Field(30.0, gt=0, alias="WAOOAW_COE_BATCH_POLL")  # seconds between looks at a batch
    coe_batch_wait: float = Field(3600.0, gt=0, alias="WAOOAW_COE_BATCH_WAIT")  # then the run stops, resumable

    # Directories of agent specs loaded beside the built-in agents/specs/, separated like PATH (os.pathsep).
    agent_specs: Annotated[tuple[Path, ...], NoDecode] = Field((), alias="WAOOAW_AGENT_SPECS")

    bus_stream: str = Field("waooaw:events", alias="WAOOAW_BUS_STREAM")
    bus_visibility_timeout: float = Field(60.0, alias="WAOOAW_BUS_VISIBILITY_TIMEOUT")
    bus_max_deliveries: int = Field(5, alias="WAOOAW_BUS_MAX_DELIVERIES")
    # Deliveries one worker process handles at once (agents wait on GitHub and Claude, not CPU).
    worker_concurrency: int = Field(4, alias="WAOOAW_WORKER_CONCURRENCY")
    agent_timeout: float = Field(120.0, alias="WAOOAW_AGENT_TIMEOUT")
    # A webhook body not all there within this many seconds is refused (408): GitHub counts an
    # answer later than 10 s as failed, so a slower body is not GitHub's.
    webhook_read_timeout: float = Field(10.0, gt=0, alias="WAOOAW_WEBHOOK_READ_TIMEOUT")
    # Bytes of webhook bodies held at once across requests; a body that would pass it is refused
    # (503, Retry-After). At least one largest delivery, so GitHub's biggest always fits alone.
    webhook_bytes_in_flight: int = Field(
        64 * 1024 * 1024, ge=WEBHOOK_BODY_MAX_BYTES, alias="WAOOAW_WEBHOOK_BYTES_IN_FLIGHT"
    )
    # How often the app asks GitHub for the App's deliveries it missed and has them redelivered (App mode;
    # one process of several at a time): `15m`, `1h`; `0` turns it off.
    deliveries_recover_interval: timedelta = Field(RECOVER_INTERVAL, alias="WAOOAW_DELIVERIES_RECOVER_INTERVAL")
    # How often the app reads 👍/👎 on agents' comments into their reputation (GitHub sends no webhook for a
    # reaction; one process of several at a time): `6h`, `1h`; `0` turns it off.
    reactions_interval: timedelta = Field(REACTIONS_INTERVAL, alias="WAOOAW_REACTIONS_INTERVAL")
    # How often the Learning Curator proposes config changes on the repositories with new outcomes (one
    # process of several at a time): `1d`, `12h`; `0` turns it off (`/waooaw curate` still runs it).
    curate_interval: timedelta = Field(CURATE_INTERVAL, alias="WAOOAW_CURATE_INTERVAL")
    # How often the app records the timer events (`schedule.daily`, `schedule.weekly`) due to the agents hired
    # on each repository that wake on them (one process of several at a time): `1h`, `15m`; `0` turns it off.
    schedule_interval: timedelta = Field(SCHEDULE_INTERVAL, alias="WAOOAW_SCHEDULE_INTERVAL")
    report_tz: str = Field("UTC", alias="WAOOAW_REPORT_TZ")
    # The daily LLM spend the report compares with (USD, all repositories); unset: no budget line.
    report_budget_usd: float | None = Field(None, alias="WAOOAW_REPORT_BUDGET_USD")
    # A read token for the report pages until they take the Context API's tokens (bot/reports_web.py).
    reports_token: SecretStr | None = Field(None, alias="WAOOAW_REPORTS_TOKEN")

    log_level: str = Field("INFO", alias="WAOOAW_LOG_LEVEL")
    # Traces are off unless an OTLP endpoint is set; the SDK reads the other OTEL_* variables itself.
    otel_endpoint: str | None = Field(None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_traces_endpoint: str | None = Field(None, alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")  # the full URL
    otel_service_name: str = Field("waooaw", alias="OTEL_SERVICE_NAME")
    # Where `waooaw worker` serves its own /metrics (it serves no other HTTP); 0: none.
    worker_metrics_port: int = Field(9464, ge=0, le=65535, alias="WAOOAW_WORKER_METRICS_PORT")

    @field_validator(
        "redis_url",
        "anthropic_base_url",
        "api_url",
        "report_budget_usd",
        "reports_token",
        "llm_repo_daily_budget_usd",
        "llm_installation_daily_budget_usd",
        "llm_installation_monthly_budget_usd",
        "llm_agent_daily_budget_usd",
        "llm_agent_monthly_budget_usd",
        "otel_endpoint",
        "otel_traces_endpoint",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("oidc_workflow_refs", mode="before")
    @classmethod
    def _refs(cls, value: object) -> object:
        return tuple(ref.strip() for ref in value.split(",") if ref.strip()) if isinstance(value, str) else value

    @field_validator("agent_specs", mode="before")
    @classmethod
    def _spec_dirs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("coe_token_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_ttl(value) if isinstance(value, str) else value  # the CLI's `--ttl` form, at most 30 days

    @field_validator(
        "deliveries_recover_interval", "reactions_interval", "curate_interval", "schedule_interval", mode="before"
    )
    @classmethod
    def _interval(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value.strip() in ("", "0"):
            return cls.model_fields[info.field_name or ""].default if value.strip() == "" else timedelta(0)
        return parse_ttl(value) if isinstance(value, str) else value

    @cached_property
    def private_key(self) -> str | None:
        if self.app_private_key is not None:
            return self.app_private_key.get_secret_value()
        if self.app_private_key_path is not None:
            return self.app_private_key_path.read_text()
        return None

    @property
    def github_web_url(self) -> str:
        """GitHub's web address for its API: github.com for api.github.com, the host of a GitHub
        Enterprise Server's /api/v3 or of GHE.com's api.SUBDOMAIN.ghe.com; the API URL otherwise."""
        api = self.github_api_url.rstrip("/")
        scheme, _, host = api.partition("://")
        if api == DEFAULT_GITHUB_API_URL or (host.startswith("api.") and host.endswith(".ghe.com")):
            return f"{scheme}://{host.removeprefix('api.')}"
        return api.removesuffix("/api/v3")

    @property
    def llm_budgets(self) -> BudgetPolicy:
        """The operator's LLM limits, which a repository's config may only lower."""
        from agents.budgets import BudgetPolicy  # the ledger and the LLM client: not for every command's start-up

        return BudgetPolicy(
            repo_daily_usd=self.llm_repo_daily_budget_usd,
            installation_daily_usd=self.llm_installation_daily_budget_usd,
            installation_monthly_usd=self.llm_installation_monthly_budget_usd,
            agent_daily_usd=self.llm_agent_daily_budget_usd,
            agent_monthly_usd=self.llm_agent_monthly_budget_usd,
        )

    @property
    def has_github_credentials(self) -> bool:
        return self.github_token is not None or (self.app_id is not None and self.private_key is not None)

    @property
    def otel_traces_url(self) -> str | None:
        """Where spans go: the traces endpoint as given, else the OTLP endpoint's /v1/traces (OTLP's own rule)."""
        if self.otel_traces_endpoint:
            return self.otel_traces_endpoint
        return f"{self.otel_endpoint.rstrip('/')}/v1/traces" if self.otel_endpoint else None

    @property
    def embedded(self) -> bool:
        """No Redis: the web process runs the worker itself on the local bus."""
        return self.redis_url is None

    def report_zone(self) -> ZoneInfo:
        """WAOOAW_REPORT_TZ as a time zone; ValueError, saying so, when it is not one."""
        try:
            return ZoneInfo(self.report_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"WAOOAW_REPORT_TZ={self.report_tz!r} is not a time zone (e.g. UTC, Europe/Paris)"
            ) from None


def cli_settings() -> Settings:
    """A command's settings: the environment, and `.env` (when there is one) for what the environment leaves unset.

    Only the command line reads `.env`: an app or a test building `Settings()` sees the environment alone.
    """
    return Settings(_env_file=ENV_FILE)


def command_settings() -> Settings:
    """`cli_settings()`, with the command's logging configured at their level."""
    from bot import logging as waooaw_logging

    settings = cli_settings()
    waooaw_logging.configure(settings.log_level)
    return settings
