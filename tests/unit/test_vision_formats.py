"""The formats CI reads: SARIF 2.1.0 for code scanning, and GitHub workflow commands for
annotations in any Actions job."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from agents.vision import RepoConfig, parse_diff, resolve_packs, review
from agents.vision.render import render_github
from agents.vision.sarif import to_sarif
from tests.vision_support import added, modified

SCHEMA = json.loads((Path(__file__).parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())
GITHUB_TOKEN = "ghp_" + "Zq8wX3vN5mK2pL7rT9yB4cD6fG1hJ0aS2eUk"
CONFIG = RepoConfig(rules={"hygiene-print": "warning", "structure-change-size": "error"})


def reviewed(*diffs: str, head: dict[str, bytes] | None = None, config: RepoConfig = CONFIG):
    packs = resolve_packs(config)
    return review(parse_diff("".join(diffs)), (head or {}).get, config, packs), packs


BINARY = (
    "diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..1111111\n"
    "Binary files /dev/null and b/logo.png differ\n"
)


def a_change_with_every_kind_of_finding():
    """Findings on lines, on a whole file (whose path has a space), on the change as a whole; a skipped file."""
    return reviewed(
        added("app/main.py", f"def main():\n    breakpoint()\n    print('x')\n    token = '{GITHUB_TOKEN}'\n"),
        modified("app/big module.py", "x = 1\n", "x = 1\n" * 9000),
        BINARY,
        head={"app/big module.py": b"x = 1\n" * 9000, "app/main.py": b""},
    )


def test_sarif_is_valid_sarif_2_1_0_with_one_descriptor_per_rule_and_no_secret():
    result, packs = a_change_with_every_kind_of_finding()
    log = to_sarif(result, packs, CONFIG)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    descriptors = run["tool"]["driver"]["rules"]
    applied = [rule.id for pack in packs for rule in CONFIG.apply(pack.rules)]
    assert [d["id"] for d in descriptors] == applied and len(set(applied)) == result.summary.rules
    print_rule = next(d for d in descriptors if d["id"] == "hygiene-print")
    assert print_rule["defaultConfiguration"] == {"level": "warning"}  # the config's severity, not the pack's
    secret_rule = next(d for d in descriptors if d["id"] == "secret-github-token")
    assert "security" in secret_rule["properties"]["tags"] and secret_rule["properties"]["security-severity"] == "8.0"
    assert GITHUB_TOKEN not in json.dumps(log) and GITHUB_TOKEN[4:] not in json.dumps(log)


def test_every_sarif_result_has_a_location_code_scanning_accepts():
    result, packs = a_change_with_every_kind_of_finding()
    (run,) = to_sarif(result, packs, CONFIG)["runs"]
    descriptors = run["tool"]["driver"]["rules"]
    located = [f for f in result.findings if f.path is not None]
    assert len(run["results"]) == len(located) and len(located) < len(result.findings)
    for sarif_result, finding in zip(run["results"], located, strict=True):
        assert descriptors[sarif_result["ruleIndex"]]["id"] == sarif_result["ruleId"] == finding.rule
        (location,) = sarif_result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == finding.path.replace(" ", "%20")
        assert physical["region"]["startLine"] == (finding.line or 1)
        assert sarif_result["partialFingerprints"] == {"wowvision/v1": finding.fingerprint}
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["hygiene-breakpoint"] == "error" and levels["structure-large-module"] == "note"
    # the change as a whole (its size) and what was skipped are the invocation's notifications
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    texts = [n["message"]["text"] for n in notifications]
    assert any(n.get("associatedRule", {}).get("id") == "structure-change-size" for n in notifications), texts
    assert any("logo.png" in text and "binary file" in text for text in texts), texts


def test_github_workflow_commands_one_per_finding():
    result, _ = reviewed(added("app/main.py", "def main():\n    breakpoint()\n    print('x')\n"))
    lines = render_github(result).splitlines()
    assert lines[:2] == [
        "::error file=app/main.py,line=2,endLine=2,title=hygiene-breakpoint::"
        "A debugger breakpoint is left in the code%0A↳ Remove it.",
        "::warning file=app/main.py,line=3,endLine=3,title=hygiene-print::print() in library code"
        "%0A↳ Use the project's logger; keep print() for command-line entry points and scripts.",
    ]
    assert lines[-1].startswith("✖ 1 error, 1 warning · 1 file reviewed")


@pytest.mark.parametrize("path", ["app/a,b:c%d.py", "app/x\r\n::error::forged.py"])
def test_github_workflow_commands_escape_what_the_runner_would_read(path):
    result, _ = reviewed(added("app/main.py", "breakpoint()\n"))
    hostile = replace(result.findings[0], path=path, message="100% sure,\r\n::error file=x::forged", hint="")
    line = render_github(replace(result, findings=(hostile,))).splitlines()[0]
    properties, message = line.removeprefix("::error ").split("::", 1)
    assert message == "100%25 sure,%0D%0A::error file=x::forged"
    assert [pair.split("=", 1)[0] for pair in properties.split(",")] == ["file", "line", "endLine", "title"]
    encoded = properties.split(",")[0].removeprefix("file=")
    assert not set(",:\r\n") & set(encoded)
    decoded = encoded
    for escaped, char in (("%2C", ","), ("%3A", ":"), ("%0D", "\r"), ("%0A", "\n"), ("%25", "%")):
        decoded = decoded.replace(escaped, char)
    assert decoded == path
