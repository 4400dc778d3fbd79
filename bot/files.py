"""Files a command writes under its `--out` directory (a CoE job's spec, a daily report and its charts)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_files(out: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Each file at its relative path under `out`, its directories made; the paths written."""
    written = []
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        written.append(path)
    return written
