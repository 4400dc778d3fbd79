#!/usr/bin/env python
"""WowVision's deterministic review: how long it takes, how fast the command starts, how
much it settles without a model, and how often its findings are right on real history.

Two synthetic changes, reviewed with every shipped pack (secrets, hygiene, structure,
architecture, waooaw) as a pull request would be: the unified diff parsed, then every
rule applied, the head's files read from memory.

  1k    1,000 added lines in 40 files (Python, TypeScript, YAML, Markdown; multi-hunk
        edits and new files; a few findings of each kind sprinkled in)
  10k   10,000 added lines in 200 files, built the same way

For each, p50/p99 of parse+review and of review alone over --runs repetitions
(target: 1k parse+review p99 <= 50 ms), then the findings by rung and the decisions
by rung.

Start-up: `waooaw --help` and `waooaw vision check` on a one-file change in a throwaway
repository, each run --startup-runs times in a fresh process (target: <= 0.3 s).

History: merged history of a local clone (--history PATH, default this repository): each
first-parent commit of --rev reviewed against its first parent, as its pull request was,
with the config of that parent (the defaults where it has none). --sample N takes a fixed
sample of N of them (the same for a given --seed), so that a run can be judged and run
again. Printed: the share of decisions taken without an LLM call (target >= 90%), and
the findings by severity and rule. With --labels FILE (JSON: "<commit12> <rule>
<path>:<line>" → "right …" or "wrong …", the judgement of a reader), precision by
severity — right / judged — and the findings not judged yet; --dump FILE writes every
finding in that form, ready to judge. Nothing is fetched: the clone is read with git.

    python bench/vision.py                       # 200 runs of 1k, 30 of 10k, start-up, this repository
    python bench/vision.py --runs 50
    python bench/vision.py --history ../flask --rev origin/main --sample 400 --dump flask.json
    python bench/vision.py --history . --labels bench/vision_labels.json

This is a benchmark that prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
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

from agents.vision import RepoConfig, ReviewResult, parse_diff, resolve_packs, review
from agents.vision.policy import SEVERITIES

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


def startup(runs: int) -> None:
    """Wall time of the command in fresh processes: what a user (or a pre-commit hook) waits.
    Bytecode is cached as an installed package's is (one warm-up run writes it)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        for args in (["init", "-q", "-b", "main"], ["config", "user.email", "b@e"], ["config", "user.name", "b"]):
            subprocess.run(["git", *args], cwd=repo, check=True)
        for text, message in (("def main():\n    return 1\n", "one"), ("def main():\n    return 2\n", "two")):
            (repo / "app.py").write_text(text)
            subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
            subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, check=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}
        print(f"start-up: {runs} fresh processes each, a one-file change (target <= 0.3 s)")
        commands = {"waooaw --help": ["--help"], "waooaw vision check": ["vision", "check", "--base", "HEAD~1"]}
        for name, args in commands.items():
            times = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=repo, env=env, capture_output=True)
                times.append(time.perf_counter() - t0)
            times = times[1:]  # the warm-up
            print(f"  {name:<20} p50 {statistics.median(times):.3f} s   p90 {percentile(times, 90):.3f} s")


Found = dict[str, tuple[str, str]]  # "<commit12> <rule> <path>:<line>" → (severity, message)


def history(clone: Path, rev: str, sample: int | None, seed: int, labels: Path | None, dump: Path | None) -> None:
    from bot.git import Git

    pairs = _merged(clone, rev, sample, seed)
    if not pairs:
        print(f"history: no commit with a parent at {rev} in {clone}")
        return
    totals: Counter[str] = Counter()
    found: Found = {}
    elapsed: list[float] = []
    with Git(clone) as git:
        for base, head in pairs:
            t0 = time.perf_counter()
            result = _review_commit(git, base, head)
            elapsed.append((time.perf_counter() - t0) * 1000)
            totals.update(result.summary.decisions)
            for finding in result.findings:
                where = f"{finding.path or '(change)'}:{finding.line or ''}".rstrip(":")
                found[f"{head[:12]} {finding.rule} {where}"] = (finding.severity, finding.message)
    print(
        f"history of {clone} at {rev}: {len(pairs)} first-parent commits, each against its parent "
        f"(config, parse and review p50 {statistics.median(elapsed):.1f} ms, max {max(elapsed):.1f} ms)"
    )
    print(f"  decisions: {_decisions(dict(totals))}")
    by_severity = Counter(severity for severity, _ in found.values())
    print(f"  findings: {len(found)} ({', '.join(f'{s} {by_severity[s]}' for s in SEVERITIES if by_severity[s])})")
    for rule, count in Counter(key.split()[1] for key in found).most_common():
        severity = next(found[key][0] for key in found if key.split()[1] == rule)
        print(f"    {rule:<36} {severity:<8} {count}")
    if labels is not None:
        _precision(found, json.loads(labels.read_text()))
    if dump is not None:
        dump.write_text(json.dumps({key: f"? {level}: {message}" for key, (level, message) in found.items()}, indent=1))
        print(f"  every finding written to {dump}, to judge: replace '?' with 'right' or 'wrong'")


def _merged(clone: Path, rev: str, sample: int | None, seed: int) -> list[tuple[str, str]]:
    """(parent, commit) for each first-parent commit of `rev`, oldest last; a fixed sample of them."""
    listed = subprocess.run(
        ["git", "-C", str(clone), "rev-list", "--first-parent", "--parents", rev], capture_output=True, text=True
    ).stdout.splitlines()
    pairs = [(shas[1], shas[0]) for shas in map(str.split, listed) if len(shas) > 1]
    if sample is not None and sample < len(pairs):
        pairs = sorted(random.Random(seed).sample(pairs, sample), key=pairs.index)
    return pairs


def _review_commit(git, base: str, head: str) -> ReviewResult:
    """The commit reviewed as its pull request was: the parent's config (the defaults where it has
    none or an invalid one), the parent's and the commit's files."""
    from agents.vision import CONFIG_PATH, ConfigError, PolicyError, parse_config

    try:
        config = parse_config(git.read(base, CONFIG_PATH), CONFIG_PATH)
        packs = resolve_packs(config, lambda path: git.read(base, path))
    except (ConfigError, PolicyError):
        config = RepoConfig()
        packs = resolve_packs(config)
    return review(
        parse_diff(git.diff(base, head)),
        lambda path: git.read(head, path),
        config,
        packs,
        files_at_base=lambda path: git.read(base, path),
    )


def _precision(found: dict[str, tuple[str, str]], judged: dict[str, str]) -> None:
    """Precision by severity over the findings a reader judged (a verdict's first word)."""
    print("  precision (right / judged), by severity:")
    for severity in SEVERITIES:
        verdicts = [_verdict(judged[key]) for key, (level, _) in found.items() if level == severity and key in judged]
        right, total = verdicts.count("right"), sum(1 for v in verdicts if v in ("right", "wrong"))
        shown = f"{right / total:.0%} ({right}/{total})" if total else "n/a (none judged)"
        count = sum(1 for level, _ in found.values() if level == severity)
        print(f"    {severity:<8} {shown}   of {count} found, {count - total} not judged")


def _verdict(judgement: str) -> str:
    """ "right: why" → "right"; "? …" (not judged yet) → "?"."""
    return judgement.split(maxsplit=1)[0].rstrip(":") if judgement.strip() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="repetitions of the 1k review (the 10k one runs runs/7)")
    parser.add_argument("--startup-runs", type=int, default=10, help="fresh processes per start-up figure")
    parser.add_argument("--history", type=Path, default=ROOT, help="a local clone whose merged history to review")
    parser.add_argument("--rev", default="HEAD", help="the branch of that clone whose first-parent history is read")
    parser.add_argument("--sample", type=int, help="review a fixed sample of this many commits (default: all)")
    parser.add_argument("--seed", type=int, default=14, help="the sample's seed")
    parser.add_argument("--labels", type=Path, help="judged findings (JSON) for precision by severity")
    parser.add_argument("--dump", type=Path, help="write every finding found in the history (JSON), to judge")
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
    startup(args.startup_runs)
    print()
    history(args.history.resolve(), args.rev, args.sample, args.seed, args.labels, args.dump)


if __name__ == "__main__":
    main()
