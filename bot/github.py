"""The one GitHub client factory, on githubkit.

`GitHubClients` hands out a `githubkit.GitHub` per installation:

- App auth (GITHUB_APP_ID + private key): App JWT → installation token. Tokens are
  cached per installation in this object and reused until 5 minutes before they
  expire; one mint at a time per installation. (githubkit's own
  `AppInstallationAuthStrategy` does cache, but in a process-global cache keyed by
  App id only, refreshes 1 minute before expiry and lets concurrent first calls mint
  twice — so we keep the token ourselves.) A 401 on a cached token drops it and the
  request is replayed once with a fresh one.
- Token auth (GITHUB_TOKEN) when there are no App credentials (Actions, local use).
- No credentials at all: `GitHubClients(...)` raises `GitHubCredentialsError`;
  `github_clients(settings)` returns None and the caller publishes in dry run.

Every client sends its calls over one pool of connections the factory keeps (`PooledTransport`),
validates request bodies against GitHub's schema before sending, keeps
to GitHub's rate limits through one `Limiter` (bot/ratelimit.py: paced per installation,
the search API's quota apart (`for_search`), shared through Redis; a call that would wait
past its budget raises `GitHubRateLimited`), and retries through `RetryPolicy`: 5xx with
backoff, each wait capped by `max_wait`; a rate limit at once, which the limiter holds until
GitHub's time. Tokens and keys are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import structlog
from githubkit import GitHub
from githubkit.auth import AppAuthStrategy, TokenAuthStrategy
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed
from githubkit.retry import RetryOption

from agents.context.documents import split_repo
from bot import metrics
from bot.conditional import ConditionalReads
from bot.ratelimit import Limiter, is_rate_limit, limit_store
from bot.settings import Settings

log = structlog.get_logger(__name__)

USER_AGENT = "waooaw"
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_MAX_WAIT = 300.0  # seconds: the longest single wait before a retry
DEFAULT_MAX_RETRIES = 3

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
PERMISSIONS: tuple[str, ...] = ("admin", "maintain", "write", "triage", "read", "none")
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class GitHubCredentialsError(RuntimeError):
    """No usable GitHub credentials for what was asked."""


# ---------------------------------------------------------------- retries


class RetryPolicy:
    """githubkit `RetryDecisionFunc`: 5xx and rate limits, waits capped by `max_wait`.

    - a rate limit (429, or a 403 with `retry-after`, `x-ratelimit-remaining: 0` or saying
      "rate limit"): again at once — the response hook has paused the installation, and the
      client's limiter holds the retry until GitHub's time, or refuses it past the budget;
    - 5xx: 1 s, 2 s, 4 s…;
    - a transport error (timeout, reset connection) on GET: the same backoff as 5xx.
    Other errors (404, 422, a plain 403) are not retried.
    """

    __slots__ = ("max_retries", "max_wait")

    def __init__(self, max_retries: int = DEFAULT_MAX_RETRIES, max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if retry_count >= self.max_retries:
            return RetryOption(False)
        wait = self._wait(exc, retry_count)
        if wait is None:
            return RetryOption(False)
        # githubkit sleeps 60 s for a falsy timedelta, so never hand it zero.
        wait = max(min(wait, self.max_wait), 0.001)
        request = getattr(exc, "request", None)
        log.warning(
            "github.retry",
            error=exc.__class__.__name__,
            status=exc.response.status_code if isinstance(exc, RequestFailed) else None,
            method=request.method if request is not None else None,
            path=request.url.path if request is not None else None,
            attempt=retry_count + 1,
            wait_s=round(wait, 3),
        )
        return RetryOption(True, timedelta(seconds=wait))

    @staticmethod
    def _wait(exc: GitHubException, retry_count: int) -> float | None:
        if isinstance(exc, RequestFailed):
            if isinstance(exc, RateLimitExceeded) or is_rate_limit(exc.response.raw_response):
                return 0.0  # the limiter waits (bot/ratelimit.py)
            return float(2**retry_count) if exc.response.status_code >= 500 else None
        if isinstance(exc, RequestError):
            request = getattr(exc.exc, "request", None)
            if request is not None and request.method in ("GET", "HEAD"):
                return float(2**retry_count)
        return None


async def bot_user_id(github: GitHub[Any], slug: str) -> int:
    """The user id of an App's bot account, `<slug>[bot]`: the author of what the App creates."""
    return int((await github.rest.users.async_get_by_username(f"{slug}[bot]")).json()["id"])


# ---------------------------------------------------------------- installation tokens


@dataclass
class _Token:
    value: str
    expires_at: datetime

    def fresh(self, now: datetime) -> bool:
        return self.expires_at - now > TOKEN_REFRESH_MARGIN


class _InstallationAuth(httpx.Auth):
    """httpx auth flow: our cached installation token; one replay with a new token on 401."""

    requires_request_body = True

    def __init__(self, clients: GitHubClients, installation_id: int) -> None:
        self.clients = clients
        self.installation_id = installation_id

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.clients.installation_token_sync(self.installation_id)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        if response.status_code == 401:
            self.clients.forget_token(self.installation_id, token)
            request.headers["Authorization"] = f"token {self.clients.installation_token_sync(self.installation_id)}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.clients.installation_token(self.installation_id)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        if response.status_code == 401:
            self.clients.forget_token(self.installation_id, token)
            request.headers["Authorization"] = f"token {await self.clients.installation_token(self.installation_id)}"
            yield request


@dataclass
class InstallationAuthStrategy(BaseAuthStrategy):
    clients: GitHubClients
    installation_id: int

    def __repr__(self) -> str:  # never show the key or token
        return f"InstallationAuthStrategy(installation_id={self.installation_id})"

    def get_auth_flow(self, github: Any) -> httpx.Auth:
        return _InstallationAuth(self.clients, self.installation_id)


# ---------------------------------------------------------------- connections


class PooledTransport(httpx.AsyncBaseTransport):
    """One pool of open connections for every githubkit client of a `GitHubClients`.

    githubkit builds an httpx client for each call and closes it afterwards; with its own
    transport each call would open a connection (TCP, and TLS to api.github.com) and close it.
    Handed this one, those clients send over the pool's open connections, and closing them
    leaves the pool open: `GitHubClients.aclose` closes it. Connections belong to an event loop,
    so on another loop (a command's or a test's next `asyncio.run`) a new pool is made.
    """

    def __init__(self, ssl_context: Any) -> None:
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            # Another loop's connections can be neither used nor closed from this one: left to it.
            self._loop, self._pool = loop, httpx.AsyncHTTPTransport(verify=self._ssl)
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """A call's client is done: the pool stays open for the next call."""

    async def close_pool(self) -> None:
        pool, loop = self._pool, self._loop
        self._pool = self._loop = None
        if pool is not None and loop is asyncio.get_running_loop():
            await pool.aclose()


def _normalise_private_key(key: str) -> str:
    key = key.strip()
    if "\\n" in key and "\n" not in key:  # pasted into an env var with escaped newlines
        key = key.replace("\\n", "\n")
    return key + "\n"


# ---------------------------------------------------------------- the factory


class GitHubClients:
    """Builds and caches one `githubkit.GitHub` per installation (or one for token auth)."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = 30.0,
        limiter: Limiter | None = None,
    ) -> None:
        self.base_url = settings.github_api_url
        self.retry = RetryPolicy(max_retries=max_retries, max_wait=max_wait)
        self.limiter = limiter or Limiter(limit_store(settings.redis_url), budget=settings.github_wait_budget)
        self.reads = ConditionalReads(settings.redis_url)
        self.timeout = timeout
        self._app_id = settings.app_id
        private_key = settings.private_key if settings.app_id is not None else None
        self._private_key = _normalise_private_key(private_key) if private_key else None
        self._token = settings.github_token.get_secret_value() if settings.github_token is not None else None
        if self._private_key is None and not self._token:
            raise GitHubCredentialsError(
                "no GitHub credentials: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _PATH), or GITHUB_TOKEN"
            )
        if self._private_key is not None:
            _check_private_key(self._private_key)
        self._app: GitHub[Any] | None = None
        self._author: tuple[int | None] | None = None  # (id,) once known; (None,) when it cannot be
        self._bot_user_id = settings.app_bot_user_id
        self._clients: dict[int | None, GitHub[Any]] = {}
        self._search_clients: dict[int | None, GitHub[Any]] = {}
        self._tokens: dict[int, _Token] = {}
        self._async_locks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        self._sync_lock = threading.Lock()
        # Building a TLS context costs ~50 ms of CPU: the pool and the sync calls' clients share this one.
        self._ssl = httpx.create_ssl_context()
        self._transport = PooledTransport(self._ssl)
        self.tokens_minted = 0

    def __repr__(self) -> str:
        return f"GitHubClients(mode={self.mode!r}, base_url={self.base_url!r})"

    @property
    def mode(self) -> Literal["app", "token"]:
        return "app" if self._private_key is not None else "token"

    def _new(self, auth: BaseAuthStrategy, limits_key: str) -> GitHub[Any]:
        """A client whose calls count against the limits of `limits_key` (whose quota they spend)."""
        return GitHub(
            auth,
            base_url=self.base_url,
            user_agent=USER_AGENT,
            timeout=self.timeout,
            ssl_verify=self._ssl,
            async_transport=self._transport,
            auto_retry=self.retry,
            throttler=self.limiter.throttler(limits_key),
            # The limiter reads each answer; so do the metrics (calls by route class and status, the rate limit left).
            async_event_hooks=metrics.with_github_hooks(self.limiter.event_hooks(limits_key)),
            event_hooks=metrics.GITHUB_HOOKS,
            rest_api_validate_body=True,
            # Our own cache, not githubkit's process-global one; no HTTP cache: lookups
            # by marker must see what was just written.
            cache_strategy=MemCacheStrategy(),
            http_cache=False,
        )

    def for_installation(self, installation_id: int | None) -> GitHub[Any]:
        """The client to act for one installation (App auth) or the token's owner."""
        key = self._client_key(installation_id)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._new(self._auth(key), self._limits_key(key))
        return client

    def for_search(self, installation_id: int | None) -> GitHub[Any]:
        """The client for the search API, whose quota (30 calls a minute) is apart from the others':
        its limits are kept under a key of their own, so a search refused for its rate pauses the
        installation's searches, not the rest of its calls."""
        key = self._client_key(installation_id)
        client = self._search_clients.get(key)
        if client is None:
            client = self._search_clients[key] = self._new(self._auth(key), self._limits_key(key) + ":search")
        return client

    def _auth(self, key: int | None) -> BaseAuthStrategy:
        return TokenAuthStrategy(self._token or "") if key is None else InstallationAuthStrategy(self, key)

    async def get_json_again(self, installation_id: int | None, url: str, params: dict[str, Any]) -> Any:
        """GET a JSON resource read again and again (a config or policy file): sent conditionally, so
        GitHub answers 304 at no cost to the quota while it has not changed (bot/conditional.py)."""
        github = self.for_installation(installation_id)
        return await self.reads.get_json(github, self._limits_key(self._client_key(installation_id)), url, params)

    async def paused_for(self, installation_id: int | None) -> float:
        """Seconds a rate limit still keeps the installation's calls back (0: they may go now)."""
        try:
            key = self._limits_key(self._client_key(installation_id))
        except GitHubCredentialsError:
            return 0.0  # no client can act for it: its agents fail on that, not on a pause
        return await self.limiter.paused_for(key)

    def _client_key(self, installation_id: int | None) -> int | None:
        """Whose client: the installation's (App auth), or None for the token's."""
        if self.mode == "app" and installation_id is not None:
            return installation_id
        if self._token:
            return None
        raise GitHubCredentialsError(
            "App auth needs an installation id (the event carries none) and GITHUB_TOKEN is not set"
        )

    def _limits_key(self, installation_id: int | None) -> str:
        """An installation's quota is its own; a token's is its owner's (named by a digest, never the token)."""
        if installation_id is not None:
            return f"installation:{installation_id}"
        return "token:" + hashlib.sha256((self._token or "").encode()).hexdigest()[:16]

    @property
    def app_id(self) -> int | None:
        """The App we act as, in App mode."""
        return self._app_id if self.mode == "app" else None

    def app(self) -> GitHub[Any]:
        """The client authenticated as the App itself (JWT): /app endpoints only."""
        if self._private_key is None or self._app_id is None:
            raise GitHubCredentialsError("no App credentials (GITHUB_APP_ID and private key)")
        if self._app is None:
            self._app = self._new(AppAuthStrategy(self._app_id, self._private_key), f"app:{self._app_id}")
        return self._app

    async def author_id(self, github: GitHub[Any]) -> int | None:
        """The user GitHub names as the author of what we create: the App's bot user, or the token's
        owner; None when it cannot be learnt (an installation token cannot read /user). `github` is
        a client from `for_installation`, for the lookups that need one."""
        if self._author is None:
            try:
                self._author = (await self._find_author(github),)
            except RequestFailed as exc:
                if exc.response.status_code not in (401, 403, 404):
                    raise  # a passing failure: ask again next time
                log.warning("github.author_unknown", status=exc.response.status_code)
                self._author = (None,)
        return self._author[0]

    async def _find_author(self, github: GitHub[Any]) -> int:
        if self._bot_user_id is not None:
            return self._bot_user_id
        if self.mode == "app":
            app = (await self.app().rest.apps.async_get_authenticated()).json()
            assert app is not None  # an App's own token always reads its App
            return await bot_user_id(github, app["slug"])
        return int((await github.rest.users.async_get_authenticated()).json()["id"])

    # -- installation tokens

    def _cached(self, installation_id: int) -> str | None:
        token = self._tokens.get(installation_id)
        if token is not None and token.fresh(datetime.now(UTC)):
            return token.value
        return None

    def _remember(self, installation_id: int, token: str, expires_at: str) -> str:
        expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        self._tokens[installation_id] = _Token(token, expiry)
        self.tokens_minted += 1
        log.info("github.installation_token", installation_id=installation_id, expires_at=expiry.isoformat())
        return token

    def _lock(self, installation_id: int) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        entry = self._async_locks.get(installation_id)
        if entry is None or entry[0] is not loop:
            entry = self._async_locks[installation_id] = (loop, asyncio.Lock())
        return entry[1]

    async def installation_token(self, installation_id: int) -> str:
        """A token for the installation, minted at most once per hour-ish (5 min margin)."""
        if (token := self._cached(installation_id)) is not None:
            return token
        async with self._lock(installation_id):
            if (token := self._cached(installation_id)) is not None:
                return token
            response = await self.app().rest.apps.async_create_installation_access_token(installation_id)
            return self._remember(installation_id, response.parsed_data.token, response.parsed_data.expires_at)

    def installation_token_sync(self, installation_id: int) -> str:
        with self._sync_lock:
            if (token := self._cached(installation_id)) is not None:
                return token
            response = self.app().rest.apps.create_installation_access_token(installation_id)
            return self._remember(installation_id, response.parsed_data.token, response.parsed_data.expires_at)

    async def repository_token(self, installation_id: int, repo: str, permissions: dict[str, str]) -> str:
        """A new installation token for one repository with only `permissions` (handed to a CoE runner).

        Never cached: it leaves this process, and our own calls keep using the installation's token.
        """
        _, name = split_repo(repo)
        response = await self.app().rest.apps.async_create_installation_access_token(  # type: ignore[call-overload]  # githubkit's overloads take its TypedDicts, not our dicts
            installation_id, data={"repositories": [name], "permissions": permissions}
        )
        log.info("github.repository_token", installation_id=installation_id, repo=repo, permissions=permissions)
        return response.parsed_data.token

    def forget_token(self, installation_id: int, token: str) -> None:
        current = self._tokens.get(installation_id)
        if current is not None and current.value == token:
            del self._tokens[installation_id]

    # -- permissions

    async def permission(self, installation_id: int | None, repo: str, username: str) -> Permission:
        """The user's role on the repo: admin, maintain, write, triage, read or none (404)."""
        owner, name = split_repo(repo)
        github = self.for_installation(installation_id)
        try:
            response = await github.rest.repos.async_get_collaborator_permission_level(owner, name, username)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return "none"
            raise
        data = response.parsed_data
        role = (data.role_name or "").lower()
        if role in PERMISSIONS:
            return role  # type: ignore[return-value]  # one of PERMISSIONS
        # A custom role: its base role shows in the user's permission flags.
        flags = getattr(data.user, "permissions", None) if data.user is not None else None
        if flags:
            for flag, level in (
                ("admin", "admin"),
                ("maintain", "maintain"),
                ("push", "write"),
                ("triage", "triage"),
                ("pull", "read"),
            ):
                if getattr(flags, flag, False) is True:
                    return level  # type: ignore[return-value]  # one of PERMISSIONS
        legacy = (data.permission or "").lower()
        return legacy if legacy in PERMISSIONS else "none"  # type: ignore[return-value]  # one of PERMISSIONS

    async def can_write(self, installation_id: int | None, repo: str, username: str) -> bool:
        """Write, maintain or admin: who may run the commands that act or spend."""
        return await self.permission(installation_id, repo, username) in WRITE_PERMISSIONS

    async def aclose(self) -> None:
        """Forget clients and tokens; close the connections to GitHub and to Redis."""
        await self._transport.close_pool()
        await self.limiter.close()
        await self.reads.close()
        self._clients.clear()
        self._search_clients.clear()
        self._tokens.clear()
        self._app = None


def _check_private_key(key: str) -> None:
    """Fail at start-up, not on the first event, when the key is not a PEM RSA key."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key.encode(), password=None)
    except Exception as exc:  # noqa: BLE001 - never echo the key itself
        raise GitHubCredentialsError(
            f"GITHUB_APP_PRIVATE_KEY is not a readable PEM private key ({exc.__class__.__name__})"
        ) from None


def github_clients(settings: Settings, **options: Any) -> GitHubClients | None:
    """The factory, or None when there are no GitHub credentials at all (dry run)."""
    if not settings.has_github_credentials:
        return None
    return GitHubClients(settings, **options)
