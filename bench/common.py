"""What the benchmark scripts share: a free port, a fresh-schema URL, the real payloads."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIRS = [ROOT / "tests" / "fixtures" / "webhooks", ROOT.parent / "shared" / "fixtures" / "webhooks"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def schema_url(pg_url: str, schema: str) -> str:
    """`pg_url` with every connection's search_path set to `schema`."""
    return f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"


def find_payload(relative: str) -> Path:
    """A real webhook payload: the repo's copy first, ../shared as a fallback."""
    for base in FIXTURE_DIRS:
        if (base / relative).is_file():
            return base / relative
    raise SystemExit(f"no webhook fixture {relative} under {', '.join(map(str, FIXTURE_DIRS))}")
