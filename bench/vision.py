#!/usr/bin/env python
"""WowVision's deterministic review: how long it takes, and how much it settles without a model.

Two synthetic changes, reviewed with every shipped pack (secrets, hygiene, structure,
architecture, waooaw) as a pull request would be: the unified diff parsed, then every
rule applied, the head's files read from memory.

  1k    1,000 added lines in 40 files (Python, TypeScript, YAML, Markdown; multi-hunk
        edits and new files; a few findings of each kind sprinkled in)
  10k   10,000 added lines in 200 files, built the same way

For each, p50/p99 of parse+review and of review alone over --runs repetitions
(target: 1k parse+review p99 <= 50 ms), then the findings by rung and the decisions
by rung. Last, the same review over each commit of this repository's own history
(commit vs its parent, when git history is available): the share of decisions taken
without an LLM call (target >= 90%).

    python bench/vision.py            # 200 runs of 1k, 30 of 10k
    python bench/vision.py --runs 50

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents.vision import RepoConfig, ReviewResult, parse_diff, resolve_packs, review  # noqa: E402

PACKS = ["secrets", "hygiene", "structure", "architecture", "waooaw"]

PY_LINES = [
    "def handle_{n}(event, store):",
    "    value = store.get(event.key)",
    "    if value is None:",
    "        return []",
    "    result = [item for item in value if item.active]",
    "    log.info('handled %s', event.key)",
    "    return sorted(result, key=lambda item: item.rank)",
    "from agents.outputs import Comment",
    "import json",
    "    payload = json.loads(body)",
    "    total += len(payload.get('items', []))",
    "class Handler{n}:",
    "    name = 'handler-{n}'",
    "    try:",
    "        run(event)",
    "    except KeyError:",
    "        raise ValueError('missing key') from None",
]
TS_LINES = [
    "export function render{n}(props: Props): string {",
    "  const items = props.items.filter((item) => item.visible);",
    "  return items.map((item) => `<li>${item.name}</li>`).join('');",
    "}",
    "const limit = Number(process.env.LIMIT ?? 10);",
]
OTHER_LINES = ["- name: step {n}", "  run: make test", "Some prose about step {n}.", "key_{n}: value"]
SPRINKLES = [  # one in ~40 lines: what a real change occasionally holds
    "    print('debug', value)",
    "    # TODO make this faster",
    "    breakpoint()",
    "from bot.settings import Settings",
    "    password = 'Zr8!kq2Lm#9vX4pT'",
    "console.log(items);",
]


def synthetic_change(files: int, added_lines: int, seed: int) -> tuple[bytes, dict[str, bytes]]:
    """A unified diff of `files` files adding `added_lines` lines in all, and the head's files."""
    rng = random.Random(seed)
    per_file = added_lines // files
    diff: list[str] = []
    head: dict[str, bytes] = {}
    for index in range(files):
        kind = index % 5
        if kind in (0, 1, 2):
            path, pool = f"agents/module_{index}.py", PY_LINES
        elif kind == 3:
            path, pool = f"web/component_{index}.ts", TS_LINES
        else:
            path, pool = f"docs/page_{index}.md" if index % 2 else f"config/conf_{index}.yml", OTHER_LINES
        new_lines = []
        for n in range(per_file):
            if rng.random() < 1 / 40:
                new_lines.append(rng.choice(SPRINKLES))
            else:
                new_lines.append(rng.choice(pool).replace("{n}", str(n)))
        if index % 2:  # a new file: one hunk
            diff.append(f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n")
            diff.append(f"@@ -0,0 +1,{len(new_lines)} @@\n" + "".join(f"+{line}\n" for line in new_lines))
            head[path] = ("\n".join(new_lines) + "\n").encode()
        else:  # an edit: hunks of 5 added lines between 3 lines of context on each side
            diff.append(f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n")
            old_line = new_line = 1
            content: list[str] = []
            for start in range(0, len(new_lines), 5):
                chunk = new_lines[start : start + 5]
                context = [f"context {old_line + i}" for i in range(6)]
                diff.append(f"@@ -{old_line},7 +{new_line},{6 + len(chunk)} @@\n")
                diff.append("".join(f" {line}\n" for line in context[:3]))
                diff.append(f"-removed {old_line}\n" + "".join(f"+{line}\n" for line in chunk))
                diff.append("".join(f" {line}\n" for line in context[3:]))
                content += context[:3] + chunk + context[3:] + ["unchanged"] * 10
                old_line += 17
                new_line += 16 + len(chunk)
            head[path] = ("\n".join(content) + "\n").encode()
    return "".join(diff).encode(), head


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(name: str, raw: bytes, head: dict[str, bytes], runs: int, config: RepoConfig, packs) -> ReviewResult:
    total: list[float] = []
    review_only: list[float] = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        diff = parse_diff(raw)
        t1 = time.perf_counter()
        result = review(diff, head.get, config, packs)
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1000)
        review_only.append((t2 - t1) * 1000)
    assert result is not None
    added = sum(f.additions for f in parse_diff(raw).files)
    print(f"{name}: {len(head)} files, {added} added lines, {len(raw.splitlines())} diff lines, {runs} runs")
    print(f"  parse+review  p50 {statistics.median(total):7.2f} ms   p99 {percentile(total, 99):7.2f} ms")
    print(f"  review only   p50 {statistics.median(review_only):7.2f} ms   p99 {percentile(review_only, 99):7.2f} ms")
    by_rung = Counter(finding.rung for finding in result.findings)
    findings = sum(by_rung.values()) or 1
    print(
        f"  findings: {len(result.findings)} "
        + " ".join(f"{rung} {count} ({count / findings:.0%})" for rung, count in by_rung.items())
        + f"; pending for the LLM rung: {len(result.pending)} (skipped here: LLM rung not wired)"
    )
    print(f"  decisions: {_decisions(result.summary.decisions)}")
    return result


def _decisions(decisions: dict[str, int]) -> str:
    total = sum(decisions.values()) or 1
    without_llm = total - decisions.get("unsettled", 0) - decisions.get("llm", 0)
    parts = ", ".join(f"{rung} {count}" for rung, count in decisions.items())
    return f"{parts} → {without_llm / total:.1%} without an LLM call"


def own_history(config: RepoConfig, packs) -> None:
    from bot.vision_cli import Git

    commits = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", "--first-parent", "HEAD"], capture_output=True, text=True
    ).stdout.split()
    pairs = [(commits[i + 1], commits[i]) for i in range(len(commits) - 1)]
    if not pairs:
        print("own history: not available (no git history here)")
        return
    totals: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    elapsed: list[float] = []
    with Git(ROOT) as git:
        for base, head in pairs:
            raw = git.diff(base, head)
            t0 = time.perf_counter()
            result = review(parse_diff(raw), lambda path, head=head: git.read(head, path), config, packs)
            elapsed.append((time.perf_counter() - t0) * 1000)
            totals.update(result.summary.decisions)
            findings.update(finding.rung for finding in result.findings)
    print(
        f"own history: {len(pairs)} commits, each against its parent (review p50 {statistics.median(elapsed):.1f} ms, "
        f"max {max(elapsed):.1f} ms)"
    )
    print(f"  findings: {sum(findings.values())} ({', '.join(f'{r} {c}' for r, c in findings.items()) or 'none'})")
    print(f"  decisions: {_decisions(dict(totals))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="repetitions of the 1k review (the 10k one runs runs/7)")
    args = parser.parse_args()
    config = RepoConfig(packs=PACKS)
    packs = resolve_packs(config)
    print(f"packs: {', '.join(PACKS)} ({sum(len(p.rules) for p in packs)} rules)\n")
    raw, head = synthetic_change(files=40, added_lines=1000, seed=1)
    measure("1k", raw, head, args.runs, config, packs)
    print()
    raw, head = synthetic_change(files=200, added_lines=10000, seed=2)
    measure("10k", raw, head, max(10, args.runs // 7), config, packs)
    print()
    own_history(config, packs)


if __name__ == "__main__":
    main()
