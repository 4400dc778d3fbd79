"""`waooaw setup`'s pieces that need no page: the webhook URL, and what it writes to `.env`."""

from __future__ import annotations

import pytest
from dotenv import dotenv_values

from bot.settings import Settings
from bot.setup import RegisteredApp, SetupError, webhook_url, write_credentials

APP = RegisteredApp(
    id=12,
    slug="waooaw-dev",
    name="WAOOAW dev",
    owner="octocat",
    html_url="https://github.com/apps/waooaw-dev",
    client_id="Iv23liabc",
    pem="-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n",
    webhook_secret="hook's $secret",
    client_secret="client\\secret",
)


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("https://hooks.example.com", "https://hooks.example.com/webhooks/github"),
        (" https://hooks.example.com/ ", "https://hooks.example.com/webhooks/github"),
        ("https://smee.io/AbC123", "https://smee.io/AbC123"),
    ],
)
def test_a_bare_host_gets_the_webhook_path(given, url):
    assert webhook_url(given) == url


@pytest.mark.parametrize("given", ["hooks.example.com/webhooks/github", "ftp://hooks.example.com/x", "https://"])
def test_a_webhook_url_that_is_not_one_is_refused(given):
    with pytest.raises(SetupError, match="absolute https://"):
        webhook_url(given)


def test_what_is_written_reads_back_as_written_whatever_the_characters(tmp_path, monkeypatch):
    home = tmp_path / "it's $HOME"
    home.mkdir()
    env = home / ".env"
    key, names = write_credentials(APP, env, "https://api.github.com", 41898282)
    assert names == [
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "GITHUB_APP_BOT_USER_ID",
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
    ]  # the default API URL is left out
    assert dotenv_values(env) == {
        "GITHUB_APP_ID": "12",
        "GITHUB_APP_PRIVATE_KEY_PATH": str(home / "waooaw-dev.private-key.pem"),
        "GITHUB_APP_BOT_USER_ID": "41898282",
        "GITHUB_WEBHOOK_SECRET": "hook's $secret",
        "GITHUB_CLIENT_ID": "Iv23liabc",
        "GITHUB_CLIENT_SECRET": "client\\secret",
    }
    for name in (
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "GITHUB_APP_BOT_USER_ID",
        "GITHUB_WEBHOOK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=env)
    assert settings.app_id == 12 and settings.private_key == APP.pem and settings.app_bot_user_id == 41898282
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == "hook's $secret"
    assert "secret" not in repr(APP) and "KEY" not in repr(APP)


def test_a_bot_user_not_looked_up_is_left_out_and_one_of_another_app_is_dropped(tmp_path):
    env = tmp_path / ".env"
    env.write_text("GITHUB_APP_BOT_USER_ID=7\nWAOOAW_LOG_LEVEL=DEBUG\n")
    _, names = write_credentials(APP, env, "https://api.github.com", None)
    assert "GITHUB_APP_BOT_USER_ID" not in names
    written = dotenv_values(env)
    assert "GITHUB_APP_BOT_USER_ID" not in written and written["WAOOAW_LOG_LEVEL"] == "DEBUG"
