"""Prometheus metrics. Labels carry event and agent names only, never repository content."""

from prometheus_client import Counter, Histogram

deliveries = Counter("waooaw_deliveries_total", "Webhook deliveries by outcome", ["event", "status"])
rejected = Counter("waooaw_deliveries_rejected_total", "Webhook deliveries refused", ["code"])
agent_runs = Counter("waooaw_agent_runs_total", "Agent runs by outcome", ["agent", "status"])
agent_run_seconds = Histogram("waooaw_agent_run_seconds", "Agent run duration", ["agent"])
dead_letters = Counter("waooaw_dead_letters_total", "Deliveries given up after max deliveries")
