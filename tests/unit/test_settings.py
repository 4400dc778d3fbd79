"""Where settings come from: the environment, and `.env` for a `waooaw` command only."""

from __future__ import annotations

import pytest

from bot.settings import Settings, cli_settings


def test_a_command_reads_dot_env_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("WAOOAW_LOG_LEVEL", "WARNING")
    (tmp_path / ".env").write_text(
        "GITHUB_WEBHOOK_SECRET='from-dot-env'\nWAOOAW_LOG_LEVEL=DEBUG\nGITHUB_CLIENT_ID=Iv23x\n"
    )
    settings = cli_settings()
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == "from-dot-env"
    assert settings.log_level == "WARNING"
    assert Settings().webhook_secret is None  # the app and the tests: the environment alone


def test_a_command_without_dot_env_has_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_APP_ID", "7")
    assert cli_settings().app_id == 7


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://api.octocorp.ghe.com", "https://octocorp.ghe.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_the_web_address_of_github_follows_its_api(api, web):
    assert Settings(GITHUB_API_URL=api).github_web_url == web


def test_the_operators_llm_limits_come_from_the_environment_and_empty_is_no_limit(monkeypatch):
    monkeypatch.setenv("WAOOAW_LLM_REPO_DAILY_BUDGET_USD", "")
    monkeypatch.setenv("WAOOAW_LLM_INSTALLATION_DAILY_BUDGET_USD", "5")
    monkeypatch.setenv("WAOOAW_LLM_INSTALLATION_MONTHLY_BUDGET_USD", "100")
    monkeypatch.setenv("WAOOAW_LLM_AGENT_DAILY_BUDGET_USD", "2.5")
    monkeypatch.setenv("WAOOAW_LLM_AGENT_MONTHLY_BUDGET_USD", "40")
    limits = Settings().llm_budgets
    assert (
        limits.repo_daily_usd,
        limits.installation_daily_usd,
        limits.installation_monthly_usd,
        limits.agent_daily_usd,
        limits.agent_monthly_usd,
        limits.job_usd,
    ) == (None, 5.0, 100.0, 2.5, 40.0, None)
    assert Settings(WAOOAW_LLM_REPO_DAILY_BUDGET_USD="1").llm_budgets.repo_daily_usd == 1.0
    with pytest.raises(ValueError):
        Settings(WAOOAW_LLM_AGENT_DAILY_BUDGET_USD="-1")
