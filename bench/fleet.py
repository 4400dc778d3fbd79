"""The processes bench/load.py puts under load: `waooaw serve`, the `waooaw worker`s, and the fault."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import ROOT, Server, free_port, wait_ready

SECRET = "bench-load-webhook-secret"
APP_ID = 4242
KILL_WAIT = 2.0  # seconds the fault waits for worker 1 to be running an agent before killing it anyway
CONSUMING_WAIT = 90.0  # seconds a started worker may take to start consuming


def product_env(
    database_url: str, redis_url: str, stream: str, github_url: str, visibility_timeout: float
) -> dict[str, str]:
    """`waooaw serve` and `waooaw worker`'s environment: App auth against the fake GitHub,
    none of the caller's settings."""
    from tests.fakes.github import app_private_key

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ANTHROPIC_", "WAOOAW_"))}
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",  # each log line reaches the file as it is written, before any SIGKILL
        GITHUB_WEBHOOK_SECRET=SECRET,
        GITHUB_APP_ID=str(APP_ID),
        GITHUB_APP_PRIVATE_KEY=app_private_key(),
        GITHUB_API_URL=github_url,
        WAOOAW_DATABASE_URL=database_url,
        WAOOAW_REDIS_URL=redis_url,
        WAOOAW_BUS_STREAM=stream,
        WAOOAW_BUS_VISIBILITY_TIMEOUT=f"{visibility_timeout:g}",
        WAOOAW_LOG_LEVEL="INFO",  # the default, as in production
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU the processes under test spend over a step, by role: the machine is shared, CPU is not."""

    def __init__(self) -> None:
        self.roles: dict[int, str] = {}
        self.base: dict[int, float] = {}
        self.spent: Counter[str] = Counter()

    def start(self, roles: dict[int, str]) -> None:
        self.roles, self.spent = dict(roles), Counter()
        self.base = {pid: cpu_seconds(pid) for pid in roles}

    def joined(self, pid: int, role: str, base: float) -> None:
        """A process started during the step: its CPU from `base` on counts."""
        self.roles[pid], self.base[pid] = role, base

    def leaving(self, pid: int) -> None:
        """Read a process about to be killed."""
        self.spent[self.roles.pop(pid)] += cpu_seconds(pid) - self.base.pop(pid)

    def finish(self) -> Counter[str]:
        for pid in list(self.roles):
            self.leaving(pid)
        return self.spent


def waooaw(arguments: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A `waooaw` command in the log's directory (so no `.env` of a checkout is read)."""
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *arguments],
            cwd=log_path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


class Fleet:
    """The app, the workers, and the fault: worker 1 killed with SIGKILL and replaced."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, workers: int, database_url: str, redis_url: str, stream: str
    ) -> None:
        from redis.asyncio import Redis
        from sqlalchemy import create_engine

        self.env, self.log_dir, self.stream = env, log_dir, stream
        self.engine = create_engine(database_url, pool_size=2)
        self.redis = Redis.from_url(redis_url, decode_responses=True)
        self.app: Server | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.count = workers
        self.cpu = CpuMeter()
        self.logs: dict[int, Path] = {}  # worker pid → its log
        self.fake_pid = 0
        self.down = (math.inf, math.inf)  # perf_counter from the kill until the replacement consumed

    async def start(self) -> None:
        port = free_port()
        log = self.log_dir / "serve.log"
        self.app = Server("serve", port, waooaw(["serve", "--port", str(port)], self.env, log), log)
        self.workers = [self._spawn_worker() for _ in range(self.count)]
        await wait_ready(self.app)
        await self.ready()

    async def ready(self) -> None:
        """Every worker consuming: a worker restarted by the last fault may still be starting."""
        for worker in self.workers:
            await self.wait_consuming(worker, self.logs[worker.pid])

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = self.log_dir / f"worker-{self.started}.log"
        # Each worker serves its /metrics as in production, on a port of its own: on the shared
        # default the second could not bind (metrics.port_unavailable) and ran unscraped.
        metrics_port = {"WAOOAW_WORKER_METRICS_PORT": str(free_port())}
        worker = waooaw(["worker"], self.env | metrics_port, log)
        self.logs[worker.pid] = log
        return worker

    async def wait_consuming(self, worker: subprocess.Popen[bytes], log_path: Path) -> None:
        """Bounded wait for a worker's consumers to start (its start-up imports take seconds).

        Redis 7.0 lists a consumer in its group only once it was handed an entry, so the
        worker's own log line says when it reads the stream.
        """
        deadline = time.monotonic() + CONSUMING_WAIT
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"a worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
            if b'"bus.consumer_started"' in log_path.read_bytes():
                return
            await asyncio.sleep(0.2)  # bounded start-up wait, not a poll for work
        raise SystemExit(f"worker {worker.pid} did not consume within {CONSUMING_WAIT:g} s; logs in {self.log_dir}")

    async def fault(self) -> str:
        """SIGKILL worker 1, once it runs an agent (within KILL_WAIT), and start another: what it caught."""
        from sqlalchemy import func, select

        from agents.store.tables import AgentRun

        victim = self.workers[0]
        name = f"{socket.gethostname()}-{victim.pid}"  # bot.worker.Worker's name for itself
        query = select(func.count()).select_from(AgentRun).where(AgentRun.worker == name, AgentRun.status == "running")

        def running() -> int:
            with self.engine.connect() as connection:
                return int(connection.execute(query).scalar_one())

        deadline = time.perf_counter() + KILL_WAIT
        busy = 0
        while not busy and time.perf_counter() < deadline:
            busy = await asyncio.to_thread(running)
        self.cpu.leaving(victim.pid)
        self.down = (time.perf_counter(), math.inf)
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait)
        spawned = time.perf_counter()
        self.workers[0] = replacement = self._spawn_worker()
        caught = f"killed while running {busy} agent run(s)" if busy else f"killed idle (no run within {KILL_WAIT:g} s)"
        await self.wait_consuming(replacement, self.logs[replacement.pid])
        self.down = (self.down[0], time.perf_counter())
        start_up = cpu_seconds(replacement.pid)
        self.cpu.joined(replacement.pid, "workers", start_up)  # its start-up is reported apart
        later = time.perf_counter() - spawned
        return f"{caught}; its replacement consumed {later:.1f} s later (start-up {start_up:.1f} s CPU)"

    def measure(self) -> None:
        assert self.app is not None
        roles = {self.app.process.pid: "serve", self.fake_pid: "fake GitHub"}
        self.cpu.start(roles | {worker.pid: "workers" for worker in self.workers})

    async def depth(self) -> int:
        """Entries on the stream: handled ones are deleted with their ack, so 0 means none waits or runs."""
        return int(await self.redis.xlen(self.stream))

    def inbox(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        """delivery id → (status, attempts)."""
        from sqlalchemy import select

        from agents.store.tables import InboxRecord

        found: dict[str, tuple[str, int]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 1000):
                rows = connection.execute(
                    select(InboxRecord.delivery_id, InboxRecord.status, InboxRecord.attempts).where(
                        InboxRecord.delivery_id.in_(ids[start : start + 1000])
                    )
                )
                found.update({delivery_id: (status, attempts) for delivery_id, status, attempts in rows})
        return found

    async def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)  # `waooaw worker` stops cleanly on it
        for worker in self.workers:
            try:
                await asyncio.to_thread(worker.wait, 15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if self.app is not None:
            self.app.stop()
        await self.redis.aclose()
        self.engine.dispose()
