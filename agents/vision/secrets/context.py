"""Where a credential sits: production code, or a test fixture or docs example.

A real-format credential in a fixture is usually an intended test key (a
certificate under `tests/certs/`, `mockPrivateKeyData`, an example in the docs or a
README); failing the merge for it is wrong, staying silent is wrong too, since test
keys are sometimes live. Such findings are reported at notice, saying why the key reads as a test key.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.vision.globs import matches_any
from agents.vision.secrets.placeholders import FIXTURE_WORDS, fixture_word, identifier_words

TEST_KEY = "test key committed — confirm it is not live"

# Directories and file names that hold test data or documentation examples by convention.
FIXTURE_GLOBS = (
    "tests/",
    "test/",
    "__tests__/",
    "spec/",
    "testdata/",
    "test-data/",
    "test_data/",
    "testing/",
    "fixtures/",
    "__fixtures__/",
    "mocks/",
    "__mocks__/",
    "examples/",
    "example/",
    "samples/",
    "docs/",
    "doc/",
    "*.md",
    "*.mdx",
    "*.rst",
    "*.adoc",
    "*.example",
    "*.sample",
    "*.template",
    "*.dist",
    "*.test.*",
    "*.spec.*",
    "conftest.py",
)
_TEST_FILE_WORDS = FIXTURE_WORDS | {"test", "tests"}


def fixture_path(path: str, configured: Sequence[str] = ()) -> str | None:
    """Why `path` holds test data or examples (a sentence for the finding), or None.

    `configured` are the repository's own `fixtures` globs from `.github/waooaw.yml`.
    """
    if configured and matches_any(path, configured):
        return f"`{path}` is marked as a fixture in .github/waooaw.yml"
    if matches_any(path, FIXTURE_GLOBS):
        return f"`{path}` is a test, example or docs file"
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
    word = next((w for w in identifier_words(stem) if w in _TEST_FILE_WORDS), None)
    if word is not None:
        return f"`{path}` is named like a test file ({word})"
    return None


def fixture_name(text: str) -> str | None:
    """Why a line (with its secret already blanked out) reads as test data, or None."""
    word = fixture_word(text)
    return f"named like a {word} value" if word is not None else None
