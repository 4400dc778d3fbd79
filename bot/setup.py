"""`waooaw setup`: register the GitHub App from app.yml through GitHub's manifest flow.

A page on 127.0.0.1 holds one button: a form that posts the manifest (app.yml, with the
webhook URL and this page's callback) to GitHub's new-App page, for the user's account or
an organisation's. GitHub lets the user name the App, creates it and sends the browser
back to the callback with a code (valid an hour, once) and the run's `state`. The callback
trades the code (`POST /app-manifests/{code}/conversions`, no auth) for the App's id,
private key, webhook secret and client credentials, looks up the id of the App's bot user
(`GET /users/<slug>[bot]`, no auth), and writes them: the key to a file, the rest to `.env`
(both 0600), which every `waooaw` command reads. Then the page stops.

- A callback without the run's random `state` is refused (400) and the page keeps
  waiting: a forged redirect can neither end the registration nor plant another App.
- Only requests whose Host is 127.0.0.1 or localhost are served, so a web page that
  rebinds its own name to this address cannot read the state.
- A code GitHub does not know (404: used already, or older than an hour) ends the run
  with nothing written, as does any other failure to trade it.
- A bot user GitHub does not tell only leaves GITHUB_APP_BOT_USER_ID unset, and says so:
  the publisher looks it up itself (bot/github.py, `author_id`).
- `.env` keeps its other lines. When it already holds App credentials they are replaced
  only with `--force`, which is checked before anything is registered. No secret is
  ever printed.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode, urlsplit

import typer
import yaml
from dotenv.parser import parse_stream

from bot.settings import DEFAULT_GITHUB_API_URL, ENV_FILE, Settings, cli_settings

if TYPE_CHECKING:
    from githubkit import GitHub
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

APP_MANIFEST = Path(__file__).resolve().parents[1] / "app.yml"
CALLBACK_PATH = "/callback"
WEBHOOK_PATH = "/webhooks/github"
# Everything that belongs to one App, replaced together: a key or bot id left from another
# App would be paired with the new App's id.
APP_VARIABLES = (
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "GITHUB_APP_BOT_USER_ID",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
)
ORGANISATION = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")  # GitHub's rule for account names
CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")


class SetupError(Exception):
    """What stops the setup, worded for the user."""


@dataclass(frozen=True)
class RegisteredApp:
    """What the trade of a code gives: the new App and its secrets (never shown by repr)."""

    id: int
    slug: str | None  # GitHub's own, which names the bot user `<slug>[bot]`; None if GitHub gave none
    name: str
    owner: str
    html_url: str
    client_id: str
    pem: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    client_secret: str = field(repr=False)


# ---------------------------------------------------------------- the manifest


def webhook_url(value: str) -> str:
    """An absolute http(s) URL; one naming a bare host gets our webhook path."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SetupError(f"the webhook URL must be an absolute https:// URL, not {value.strip()!r}")
    if parts.path in ("", "/"):
        return parts._replace(path=WEBHOOK_PATH).geturl()
    return parts.geturl()


def manifest(hook: str) -> dict[str, Any]:
    """app.yml with the webhook URL filled in (the page adds its callback as `redirect_url`)."""
    try:
        loaded = yaml.safe_load(APP_MANIFEST.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read the App manifest {APP_MANIFEST}: {exc}") from None
    if not isinstance(loaded, dict):
        raise SetupError(f"the App manifest {APP_MANIFEST} is not a YAML mapping")
    hook_attributes = dict(loaded.get("hook_attributes") or {})
    hook_attributes["url"] = hook
    return {**loaded, "hook_attributes": hook_attributes, "public": False}


def apps_url(web: str, org: str | None) -> str:
    """GitHub's page of the Apps a user or an organisation owns."""
    return f"{web}/organizations/{org}/settings/apps" if org else f"{web}/settings/apps"


def registration_url(web: str, org: str | None, state: str) -> str:
    """GitHub's page that registers an App from a posted manifest."""
    return f"{apps_url(web, org)}/new?{urlencode({'state': state})}"


# ---------------------------------------------------------------- .env


def check_env_file(path: Path, force: bool) -> None:
    """Refuse, before anything is registered, to replace App credentials without `--force`."""
    held = [name for name in _env_names(path) if name in APP_VARIABLES]
    if held and not force:
        raise SetupError(
            f"{path} already holds App credentials ({', '.join(held)}): pass --force to replace them "
            "(its other lines are kept), or run `waooaw setup` in another directory"
        )


def _env_names(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [binding.key for binding in parse_stream(io.StringIO(path.read_text())) if binding.key]


def _quoted(value: str) -> str:
    """A single-quoted .env value: taken literally (no `${...}` expansion), as python-dotenv reads it."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a new file readable by its owner alone, then move it over `path`."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_credentials(
    app: RegisteredApp, env_file: Path, api_url: str, bot_user_id: int | None
) -> tuple[Path, list[str]]:
    """The key beside `env_file`, then `env_file` with the App's variables; returns the key's path
    and the names written. The file's other lines are kept as they were."""
    file_slug = _file_slug(app)
    key = (env_file.parent / f"{file_slug}.private-key.pem").resolve()
    _write_private(key, app.pem)
    values = {
        "GITHUB_APP_ID": str(app.id),
        "GITHUB_APP_PRIVATE_KEY_PATH": str(key),
        "GITHUB_APP_BOT_USER_ID": str(bot_user_id) if bot_user_id is not None else None,
        "GITHUB_WEBHOOK_SECRET": app.webhook_secret,
        "GITHUB_CLIENT_ID": app.client_id,
        "GITHUB_CLIENT_SECRET": app.client_secret,
        "GITHUB_API_URL": api_url if api_url != DEFAULT_GITHUB_API_URL else None,
    }
    written = {name: value for name, value in values.items() if value is not None}
    replaced = set(APP_VARIABLES) | set(values)
    existing = env_file.read_text() if env_file.exists() else ""
    kept = "".join(b.original.string for b in parse_stream(io.StringIO(existing)) if b.key not in replaced)
    if kept and not kept.endswith("\n"):
        kept += "\n"
    lines = "".join(f"{name}={_quoted(value)}\n" for name, value in written.items())
    _write_private(env_file, f"{kept}# The GitHub App {file_slug} (id {app.id}), written by `waooaw setup`\n{lines}")
    return key, list(written)


def _file_slug(app: RegisteredApp) -> str:
    """The App's slug made safe for a file name and a comment line."""
    return re.sub(r"[^a-z0-9-]+", "-", (app.slug or str(app.id)).lower())


# ---------------------------------------------------------------- the page


class ManifestFlow:
    """The local page and its callback; `run()` serves them until the callback is done."""

    def __init__(self, settings: Settings, org: str | None, hook: str, env_file: Path, sock: socket.socket) -> None:
        self.settings = settings
        self.org = org
        self.hook = hook
        self.manifest = manifest(hook)
        self.env_file = env_file
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.state = secrets.token_urlsafe(32)
        self.app: RegisteredApp | None = None
        self.key: Path | None = None
        self.written: list[str] = []
        self.failure: str | None = None
        self.bot_user_unknown: str | None = None  # why GITHUB_APP_BOT_USER_ID was left unset
        self._code_taken = False
        self._server: Any = None

    @property
    def account(self) -> str:
        return f"the organisation {self.org}" if self.org else "your account"

    def run(self) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.middleware.trustedhost import TrustedHostMiddleware
        from starlette.routing import Route

        page = Starlette(
            routes=[Route("/", self.page), Route(CALLBACK_PATH, self.callback)],
            middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])],
        )
        config = uvicorn.Config(page, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        asyncio.run(self._server.serve(sockets=[self.sock]))

    def _stop(self) -> None:
        self._server.should_exit = True

    async def page(self, request: Request) -> HTMLResponse:
        document = {**self.manifest, "redirect_url": self.url + CALLBACK_PATH}
        action = registration_url(self.settings.github_web_url, self.org, self.state)
        return _html(
            200,
            "Register the WAOOAW GitHub App",
            f"<p>GitHub will show the App from <code>app.yml</code> for {html.escape(self.account)}, with its "
            f"webhook at <code>{html.escape(self.hook)}</code>. Name it there and create it; GitHub then sends "
            "you back here and <code>waooaw setup</code> writes its credentials to "
            f"<code>{html.escape(str(self.env_file))}</code>.</p>"
            f'<form action="{html.escape(action)}" method="post">'
            f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(document))}">'
            '<button type="submit">Register the GitHub App</button></form>',
        )

    async def callback(self, request: Request) -> HTMLResponse:
        from starlette.background import BackgroundTask

        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            typer.echo("refused a callback that does not carry this run's state; still waiting", err=True)
            return _html(
                400,
                "Refused",
                "<p>This link does not come from this run of <code>waooaw setup</code>: "
                "nothing was registered or written.</p>",
            )
        if not CODE.fullmatch(code):
            return _html(400, "Refused", "<p>GitHub's code is missing or malformed: nothing was written.</p>")
        if self._code_taken:
            return _html(409, "Already done", "<p>This run has already received its code.</p>")
        self._code_taken = True
        status, title, body = await self._register(code)
        return _html(status, title, body, background=BackgroundTask(self._stop))

    async def _register(self, code: str) -> tuple[int, str, str]:
        """Trade the code and write the credentials; (status, title, body) of the page that says how it went."""
        from githubkit.exception import GitHubException, RequestFailed

        github = public_github(self.settings.github_api_url)
        try:
            self.app = await trade_code(github, code)
        except RequestFailed as exc:
            status = exc.response.status_code
            self.failure = (
                "GitHub does not know the code it sent back (404): it was used already or is more than an hour "
                "old. Nothing was written."
                if status == 404
                else f"GitHub refused the code (HTTP {status}). Nothing was written."
            ) + f" If GitHub created the App, delete it under {self._apps_page} and run `waooaw setup` again."
            return 400, "Not registered", f"<p>{html.escape(self.failure)}</p>"
        except GitHubException as exc:
            self.failure = (
                f"could not reach GitHub at {self.settings.github_api_url} to trade the code "
                f"({exc.__class__.__name__}); nothing was written. Run `waooaw setup` again."
            )
            return 502, "Not registered", f"<p>{html.escape(self.failure)}</p>"
        bot_user_id = await self._find_bot_user_id(github, self.app)
        try:
            self.key, self.written = write_credentials(
                self.app, self.env_file, self.settings.github_api_url, bot_user_id
            )
        except OSError as exc:
            self.failure = (
                f"the App {self.app.name} (id {self.app.id}) was registered but its credentials could "
                f"not be written ({exc}): generate a private key and a webhook secret in its settings "
                f"({self._apps_page}) and set them by hand."
            )
            return 500, "Not saved", f"<p>{html.escape(self.failure)}</p>"
        install = install_url(self.app)
        return (
            200,
            "Registered",
            (
                f"<p>The GitHub App <strong>{html.escape(self.app.name)}</strong> is registered "
                f"and its credentials are in <code>{html.escape(str(self.env_file))}</code>. "
                "You can close this page.</p>"
                f'<p><a href="{html.escape(install)}">Install it on your repositories</a>.</p>'
            ),
        )

    async def _find_bot_user_id(self, github: GitHub[Any], app: RegisteredApp) -> int | None:
        """The bot user's id; None, with the reason kept for the report, when GitHub does not tell it."""
        from githubkit.exception import GitHubException, RequestFailed

        from bot.github import bot_user_id

        if app.slug is None:
            self.bot_user_unknown = "GitHub gave no slug for the App"
            return None
        try:
            return await bot_user_id(github, app.slug)
        except RequestFailed as exc:
            self.bot_user_unknown = f"GitHub answered HTTP {exc.response.status_code} for {app.slug}[bot]"
        except GitHubException as exc:
            self.bot_user_unknown = f"could not reach GitHub for {app.slug}[bot] ({exc.__class__.__name__})"
        return None

    @property
    def _apps_page(self) -> str:
        return apps_url(self.settings.github_web_url, self.org)


def _html(status: int, title: str, body: str, **options: Any) -> HTMLResponse:
    from starlette.responses import HTMLResponse

    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, **options)


def public_github(api_url: str) -> GitHub[Any]:
    """A client without auth: the code is the credential, and a user is public."""
    from githubkit import GitHub, UnauthAuthStrategy

    from bot.github import USER_AGENT

    # No retry: the code works once, so a retried request after a lost answer could only
    # ever be told 404 (and a bot user not found is only left for the app to look up).
    return GitHub(
        UnauthAuthStrategy(), base_url=api_url, user_agent=USER_AGENT, timeout=30.0, auto_retry=False, http_cache=False
    )


async def trade_code(github: GitHub[Any], code: str) -> RegisteredApp:
    """`POST /app-manifests/{code}/conversions`: the App and its secrets, once per code."""
    app = (await github.rest.apps.async_create_from_manifest(code)).parsed_data
    owner = getattr(app.owner, "login", None) or getattr(app.owner, "slug", None) or ""  # a user or an enterprise
    return RegisteredApp(
        id=app.id,
        slug=app.slug or None,
        name=app.name,
        owner=owner,
        html_url=app.html_url,
        client_id=app.client_id,
        pem=app.pem,
        webhook_secret=app.webhook_secret,
        client_secret=app.client_secret,
    )


def install_url(app: RegisteredApp) -> str:
    return f"{app.html_url.rstrip('/')}/installations/new"


# ---------------------------------------------------------------- the command


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise SetupError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pass another --port, or 0 for any"
        ) from None
    return sock


def setup(
    org: Annotated[
        str | None,
        typer.Option(help="Register the App for this organisation (you must own it); default: your account."),
    ] = None,
    webhook_url_option: Annotated[
        str | None,
        typer.Option(
            "--webhook-url", help="Where GitHub sends events: https://HOST/webhooks/github. Asked for if omitted."
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="Port of the local page on 127.0.0.1; 0 picks a free one.", min=0, max=65535)
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace App credentials already in .env.")] = False,
) -> None:
    """Register the GitHub App from app.yml (GitHub's manifest flow) and write its credentials to .env (0600)."""
    try:
        flow = _prepare(org, webhook_url_option, port, force)
    except SetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"Open {flow.url} in a browser signed in to {flow.settings.github_web_url} and press the button.\n"
        f"It registers the App from app.yml for {flow.account}, webhook {flow.hook}.\n"
        "Waiting for GitHub to send you back (Ctrl-C stops; nothing is written before then)."
    )
    stopped = "stopped before GitHub sent the App back: nothing was written"
    try:
        flow.run()
    except KeyboardInterrupt:
        typer.echo(stopped, err=True)
        raise typer.Exit(130) from None
    if flow.app is None or flow.key is None:
        typer.echo(f"error: {flow.failure or stopped}", err=True)
        raise typer.Exit(1)
    _report(flow)


def _prepare(org: str | None, hook: str | None, port: int, force: bool) -> ManifestFlow:
    """Everything that can be refused is refused here, before GitHub creates anything."""
    if org is not None and not ORGANISATION.fullmatch(org):
        raise SetupError(f"{org!r} is not an organisation name")
    env_file = ENV_FILE.resolve()
    if not os.access(env_file.parent, os.W_OK):
        raise SetupError(f"cannot write .env and the key in {env_file.parent}")
    check_env_file(env_file, force)
    if hook is None:
        hook = typer.prompt(f"Webhook URL (where GitHub will POST events, e.g. https://your-host{WEBHOOK_PATH})")
    hook = webhook_url(hook)
    sock = _listen(port)
    try:
        return ManifestFlow(cli_settings(), org, hook, env_file, sock)
    except SetupError:
        sock.close()
        raise


def _report(flow: ManifestFlow) -> None:
    app, key = flow.app, flow.key
    assert app is not None and key is not None
    typer.echo(
        f"Registered the GitHub App {app.name} (id {app.id}) for {app.owner}.\n"
        f"Wrote {flow.env_file} ({', '.join(flow.written)}) and the private key {key}, both mode 0600: keep them "
        "out of version control.\n"
        f"Install it on your repositories: {install_url(app)}\n"
        f"Then run `waooaw serve --host 0.0.0.0 --port 8000` in this directory (it reads .env), "
        f"where {flow.hook} reaches it."
    )
    if flow.bot_user_unknown is not None:
        typer.echo(
            f"note: GITHUB_APP_BOT_USER_ID left unset ({flow.bot_user_unknown}): the app looks the bot user up "
            "itself for what it publishes; set it by hand so the events the bot causes are also known by its id",
            err=True,
        )
    if app.webhook_secret is None:
        typer.echo(
            "warning: GitHub gave no webhook secret: set one in the App's settings and GITHUB_WEBHOOK_SECRET", err=True
        )
    shadowing = [name for name in APP_VARIABLES if name in os.environ]
    if shadowing:
        typer.echo(f"note: {', '.join(shadowing)} set in this shell win over .env: unset them", err=True)
