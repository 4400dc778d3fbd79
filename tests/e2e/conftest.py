"""End to end: `waooaw serve` and `waooaw worker` as real processes, a fake GitHub on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.github import FakeGitHub, app_private_key

APP_ID = 4242


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Wait for a condition, bounded; a test fails with `what` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for: {what}")


class Process:
    """A `waooaw` subprocess whose output goes to a log file shown when a test fails.

    It runs in the log's directory (the test's own), never in the checkout, so a developer's
    `.env` there is not read; `stdin` is what it reads from its standard input.
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path, stdin: str = "") -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            env=env,
            cwd=log.parent,
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.popen.stdin is not None
        self.popen.stdin.write(stdin.encode())
        self.popen.stdin.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, exactly what a crashed machine does."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Server(Process):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(["serve", "--port", str(self.port)], env, log)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._healthy, f"waooaw serve to answer /healthz (log: {log})")

    def _healthy(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"waooaw serve exited with {self.popen.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def base_env(fake_github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    """The environment of every process: App auth against the fake GitHub, a webhook secret."""
    from tests.conftest import TEST_SECRET

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WAOOAW_", "ANTHROPIC_"))}
    env.update(
        {
            "GITHUB_WEBHOOK_SECRET": TEST_SECRET,
            "GITHUB_APP_ID": str(APP_ID),
            "GITHUB_APP_PRIVATE_KEY": app_private_key(),
            "GITHUB_API_URL": fake_github.url,
            "WAOOAW_DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "WAOOAW_LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start servers and workers; every one is stopped after the test, and its log shown on failure."""
    started: list[Process] = []

    def start(kind: str, env: dict[str, str]) -> Process:
        log = tmp_path / f"{kind}-{len(started)}.log"
        process = Server(env, log) if kind == "serve" else Process([kind], env, log)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"----- {process.log.name}\n{process.output()[-4000:]}")
