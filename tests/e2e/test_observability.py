"""A separate `waooaw worker` serves its own /metrics: what it counts is scraped from it."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.conftest import free_port, wait_until
from tests.e2e.test_pipeline import comment_payload, deliver, statuses


def test_a_worker_process_serves_the_metrics_of_the_runs_it_made(fake_github, base_env, processes, pg_store, redis_url):
    port = free_port()
    env = {
        **base_env,
        "WAOOAW_DATABASE_URL": pg_store.url,
        "WAOOAW_REDIS_URL": redis_url,
        "WAOOAW_BUS_STREAM": f"e2e:{uuid.uuid4().hex}",
        "WAOOAW_WORKER_METRICS_PORT": str(port),
    }
    server = processes("serve", env)  # with Redis: intake only
    worker = processes("worker", env)
    assert deliver(server, comment_payload("/waooaw help", 3), delivery="metrics-1").json()["status"] == "queued"
    wait_until(lambda: statuses(pg_store).get("metrics-1") == "done", "the worker to finish the delivery", timeout=60)

    def worker_metrics() -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    counted = 'waooaw_agent_runs_total{agent="concierge",status="ok"} 1.0'
    text = wait_until(lambda: counted in (t := worker_metrics()) and t, "the worker's /metrics to count the run")
    assert 'waooaw_github_requests_total{method="POST",route="repos/issues",status="201"}' in text
    assert "waooaw_bus_dead_letters 0.0" in text and "waooaw_bus_waiting " in text
    web = httpx.get(f"{server.url}/metrics").text
    assert 'waooaw_deliveries_total{event="issue_comment",status="queued"} 1.0' in web
    assert 'agent="concierge"' not in web, "the run is the worker's, counted there and only there"
    # Its log is JSON lines, of its own events: no library narrates each GitHub call in plain text.
    lines = worker.output().splitlines()
    assert lines and [line for line in lines if not line.startswith("{")] == []
