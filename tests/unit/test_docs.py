"""The README and the guides under docs/: their links lead somewhere, every setting is in the
one settings table, and each benchmark row is one dated figure."""

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The guides DESIGN.md's layout gives docs/, and the two the README sends readers to besides.
GUIDES = (
    "writing-an-agent",
    "writing-an-agent-spec",
    "context-api",
    "wowvision",
    "coe",
    "operating",
    "settings",
    "benchmarks",
    "security",
    "development",
)
PAGES = sorted(
    {
        "README.md",
        *(f"docs/{guide}.md" for guide in GUIDES),
        *(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")),
    }
)

# A fenced block, indented or not (a list item holds some): `# comment` in a shell sample is no heading.
FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
# The figure of a benchmark row: a measurement, not the story of earlier rounds.
FIGURE_MAX = 160


def prose(path: Path) -> str:
    return FENCE.sub("", path.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; GitHub suffixes a repeated one with -1, -2, …"""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(prose(path)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def table(path: Path, header: str) -> list[list[str]]:
    """The rows of the table under `header`, each a list of its cells."""
    lines = path.read_text().splitlines()
    start = lines.index(header) + 2  # the header, then its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return rows


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    path = ROOT / page
    broken = []
    for target in LINK.findall(INLINE_CODE.sub("", prose(path))):
        if SCHEME.match(target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert broken == []


def test_the_readme_links_every_guide():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in LINK.findall(prose(ROOT / "README.md"))}
    guides = {path.resolve() for path in (ROOT / "docs").glob("*.md")}
    assert {(ROOT / "docs" / f"{guide}.md").resolve() for guide in GUIDES} <= guides
    assert guides - linked == set()


def test_every_setting_is_in_the_one_settings_table_and_nothing_else_is():
    aliases = {field.alias for field in Settings.model_fields.values()}
    rows = table(ROOT / "docs" / "settings.md", "| variable | default | meaning |")
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])}
    assert aliases - documented == set(), "settings missing from docs/settings.md"
    assert documented - aliases == set(), "rows of docs/settings.md that bot/settings.py does not read"
    tables = [page for page in PAGES if "| variable |" in (ROOT / page).read_text()]
    assert tables == ["docs/settings.md"]


def test_each_benchmark_row_is_one_dated_figure_with_its_target():
    rows = table(ROOT / "docs" / "benchmarks.md", "| what | figure | target | measured |")
    assert rows
    for row in rows:
        assert len(row) == 4, row
        what, figure, _target, measured = row
        assert what and figure, row
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", measured) and date.fromisoformat(measured), row
        assert len(figure) <= FIGURE_MAX, f"{what}: {len(figure)} characters, more than one figure"
