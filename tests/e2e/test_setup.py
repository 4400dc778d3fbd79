"""`waooaw setup` driven as a user drives it: its page in a browser (httpx, following redirects),
GitHub's new-App form and the code's trade on the fake GitHub, the redirect back to the page;
then `.env`, the key, and `waooaw serve` reading that `.env`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from dotenv import dotenv_values

from bot.webhooks import sign
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import Process, free_port, wait_until
from tests.fakes.github import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "https://hooks.example.com/webhooks/github"


def clean_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    return env | {"GITHUB_API_URL": api_url}


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    buttons: int


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get"), {}, 0))
        elif tag == "input" and self.forms:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons += 1


def the_form(page: str) -> Form:
    reader = _FormReader()
    reader.feed(page)
    assert len(reader.forms) == 1, page
    return reader.forms[0]


class Setup:
    """A running `waooaw setup` and the browser that uses its page."""

    def __init__(self, tmp_path: Path, env: dict[str, str], args: list[str], stdin: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.process = Process(["setup", "--port", port, *args], env, tmp_path / "setup.log", stdin)
        self.browser = httpx.Client(follow_redirects=True, timeout=30)
        wait_until(self._serving, "the setup page to answer")

    def _serving(self) -> bool:
        if self.process.popen.poll() is not None:
            raise AssertionError(f"waooaw setup exited with {self.process.popen.returncode}:\n{self.output()}")
        try:
            return self.browser.get(self.url).status_code == 200
        except httpx.HTTPError:
            return False

    def form(self) -> Form:
        return the_form(self.browser.get(self.url).text)

    def press_the_button(self) -> httpx.Response:
        """What a browser does with the page: post its form to GitHub, follow GitHub's redirect."""
        form = self.form()
        assert form.method.lower() == "post"
        return self.browser.request(form.method.upper(), form.action, data=form.fields)

    def exit_code(self) -> int:
        return self.process.popen.wait(timeout=30)

    def output(self) -> str:
        return self.process.output()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    started: list[Setup] = []

    def start(env: dict[str, str], *args: str, stdin: str = "") -> Setup:
        started.append(Setup(tmp_path, env, list(args), stdin))
        return started[-1]

    yield start
    for running in started:
        running.process.stop()
        running.browser.close()
        print(f"----- setup.log\n{running.output()[-4000:]}")


def manifest_of(form: Form) -> dict[str, Any]:
    assert set(form.fields) == {"manifest"} and form.buttons == 1
    return json.loads(form.fields["manifest"])


def assert_private(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)


def test_setup_registers_the_app_from_its_page_and_serve_reads_the_env_it_writes(
    fake_github: FakeGitHub, setup, processes, tmp_path: Path
) -> None:
    api = f"{fake_github.url}/api/v3"  # where a GitHub Enterprise Server has its API; its web is the host
    (tmp_path / ".env").write_text("# mine\nANTHROPIC_API_KEY='sk-ant-kept'\n")
    running = setup(clean_env(api), "--webhook-url", "https://hooks.example.com")

    form = running.form()
    action = urlsplit(form.action)
    assert f"{action.scheme}://{action.netloc}{action.path}" == f"{fake_github.url}/settings/apps/new"
    state = parse_qs(action.query)["state"][0]
    app_yml = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest_of(form) == app_yml | {
        "hook_attributes": app_yml["hook_attributes"] | {"url": WEBHOOK},
        "redirect_url": f"{running.url}/callback",
        "public": False,
    }

    page = running.press_the_button()
    assert page.status_code == 200 and "Registered" in page.text
    assert str(page.url).startswith(f"{running.url}/callback?")
    assert running.exit_code() == 0, running.output()

    assert fake_github.app_registrations == [{"org": None, "state": state, "manifest": manifest_of(form)}]
    [app] = fake_github.apps.values()
    [trade] = fake_github.calls("POST", r"/app-manifests/[^/]+/conversions$")
    assert trade.path.startswith("/api/v3/")
    [lookup] = fake_github.calls("GET", r"/users/[^/]+$")
    assert lookup.path == f"/api/v3/users/{app['slug']}[bot]" and "authorization" not in lookup.headers
    key = tmp_path / "waooaw.private-key.pem"
    assert_private(key)
    assert key.read_text() == app["pem"]
    assert_private(tmp_path / ".env")
    assert (tmp_path / ".env").read_text().startswith("# mine\nANTHROPIC_API_KEY='sk-ant-kept'\n")
    assert dotenv_values(tmp_path / ".env") == {
        "ANTHROPIC_API_KEY": "sk-ant-kept",
        "GITHUB_APP_ID": str(app["id"]),
        "GITHUB_APP_PRIVATE_KEY_PATH": str(key),
        "GITHUB_APP_BOT_USER_ID": str(fake_github.bot["id"]),  # the bot user of the App named WAOOAW
        "GITHUB_WEBHOOK_SECRET": app["webhook_secret"],
        "GITHUB_CLIENT_ID": app["client_id"],
        "GITHUB_CLIENT_SECRET": app["client_secret"],
        "GITHUB_API_URL": api,
    }
    output = running.output()
    assert "GITHUB_APP_BOT_USER_ID left unset" not in output
    assert "Install it on your repositories: https://github.com/apps/waooaw/installations/new" in output
    for secret in (app["webhook_secret"], app["client_secret"], app["pem"].splitlines()[1]):
        assert secret not in output and secret not in page.text

    env = {k: v for k, v in clean_env(api).items() if k != "GITHUB_API_URL"}
    server = processes("serve", env)  # in tmp_path, beside the .env: no GITHUB_* in its environment
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    for secret, status in ((app["webhook_secret"], 202), (TEST_SECRET, 401)):
        headers = {
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": f"d-{status}",
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(secret, body),
        }
        assert httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers).status_code == status
    assert "no GitHub credentials" not in server.output(), server.output()


def test_a_callback_without_the_runs_state_is_refused_and_the_page_keeps_waiting(
    fake_github: FakeGitHub, setup, tmp_path: Path
) -> None:
    running = setup(clean_env(fake_github.url), "--webhook-url", WEBHOOK)
    callback = f"{running.url}/callback"
    assert running.browser.get(running.url, headers={"Host": "rebound.example:80"}).status_code == 400
    for params in ({"code": "c0de", "state": "forged"}, {"code": "c0de"}):
        refused = running.browser.get(callback, params=params)
        assert refused.status_code == 400 and "does not come from this run" in refused.text
    assert fake_github.calls("POST", r"/conversions$") == []
    assert not (tmp_path / ".env").exists()
    assert running.process.popen.poll() is None

    assert running.press_the_button().status_code == 200
    assert running.exit_code() == 0, running.output()
    assert dotenv_values(tmp_path / ".env")["GITHUB_APP_ID"] == str(next(iter(fake_github.apps)))
    assert "refused a callback that does not carry this run's state" in running.output()


def test_a_code_github_no_longer_knows_ends_the_run_with_nothing_written(
    fake_github: FakeGitHub, setup, tmp_path: Path
) -> None:
    running = setup(clean_env(fake_github.url), "--webhook-url", WEBHOOK)
    form = running.form()
    to_github = running.browser.post(form.action, data=form.fields, follow_redirects=False)
    assert to_github.status_code == 302
    back = to_github.headers["location"]
    code = parse_qs(urlsplit(back).query)["code"][0]
    assert httpx.post(f"{fake_github.url}/app-manifests/{code}/conversions").status_code == 201  # used elsewhere

    page = running.browser.get(back)
    assert page.status_code == 400 and "used already" in page.text
    assert running.exit_code() == 1
    assert "GitHub does not know the code it sent back (404)" in running.output()
    assert f"{fake_github.url}/settings/apps" in running.output()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup.log"]


def test_a_bot_user_github_does_not_tell_is_left_for_the_app_to_look_up(
    fake_github: FakeGitHub, setup, tmp_path: Path
) -> None:
    running = setup(clean_env(fake_github.url), "--webhook-url", WEBHOOK)
    fake_github.fail_next("GET", r"/users/", 404)
    page = running.press_the_button()
    assert page.status_code == 200 and "Registered" in page.text
    assert running.exit_code() == 0, running.output()

    [app] = fake_github.apps.values()
    written = dotenv_values(tmp_path / ".env")
    assert written["GITHUB_APP_ID"] == str(app["id"]) and "GITHUB_APP_BOT_USER_ID" not in written
    assert "GITHUB_APP_BOT_USER_ID left unset (GitHub answered HTTP 404 for waooaw[bot])" in running.output()


def test_setup_for_an_organisation_asks_for_the_webhook_and_replaces_credentials_only_with_force(
    fake_github: FakeGitHub, setup, tmp_path: Path
) -> None:
    env = clean_env(fake_github.url)
    before = (
        "WAOOAW_LOG_LEVEL=DEBUG\nGITHUB_APP_ID=1\n"
        'GITHUB_APP_PRIVATE_KEY="-----BEGIN KEY-----\nold\n-----END KEY-----"\n'
    )
    (tmp_path / ".env").write_text(before)
    refused = subprocess.run(
        [sys.executable, "-m", "bot.cli", "setup", "--webhook-url", WEBHOOK],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "already holds App credentials (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)" in refused.stderr
    assert "--force" in refused.stderr and (tmp_path / ".env").read_text() == before

    running = setup(env, "--org", "octo-org", "--force", stdin="https://hooks.example.com/webhooks/github\n")
    form = running.form()
    assert form.action.startswith(f"{fake_github.url}/organizations/octo-org/settings/apps/new?state=")
    assert manifest_of(form)["hook_attributes"]["url"] == WEBHOOK
    assert running.press_the_button().status_code == 200
    assert running.exit_code() == 0, running.output()

    [app] = fake_github.apps.values()
    assert app["owner"]["login"] == "octo-org" and fake_github.app_registrations[0]["org"] == "octo-org"
    assert "for octo-org" in running.output()
    written = dotenv_values(tmp_path / ".env")
    assert written["WAOOAW_LOG_LEVEL"] == "DEBUG" and written["GITHUB_APP_ID"] == str(app["id"])
    assert "GITHUB_APP_PRIVATE_KEY" not in written and "old" not in (tmp_path / ".env").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--webhook-url", "hooks.example.com/webhooks/github"], "must be an absolute https:// URL"),
        (["--webhook-url", WEBHOOK, "--org", "../settings"], "is not an organisation name"),
    ],
)
def test_setup_refuses_bad_input_before_anything_is_registered(tmp_path: Path, args: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "setup", *args],
        env=clean_env("http://127.0.0.1:9"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and says in result.stderr
    assert list(tmp_path.iterdir()) == []
