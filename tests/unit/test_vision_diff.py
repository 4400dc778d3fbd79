"""The diff model and review-comment anchors, on real `git diff` output."""

from __future__ import annotations

import pytest

from agents.vision.diff import Anchor, FileStatus, anchor, from_github_files, parse_diff
from tests.vision_support import added

# `git diff -M` of a real commit: a new non-UTF-8 file, a binary change, a two-hunk
# change, a rename with an edit, a deletion and a mode change.
REAL_DIFF = (
    b"diff --git a/latin1.txt b/latin1.txt\n"
    b"new file mode 100644\n"
    b"index 0000000..7721c5c\n"
    b"--- /dev/null\n"
    b"+++ b/latin1.txt\n"
    b"@@ -0,0 +1 @@\n"
    b"+caf\xe9 cr\xe8me\n"
    b"diff --git a/logo.png b/logo.png\n"
    b"index 45a21f1..bccac03 100644\n"
    b"Binary files a/logo.png and b/logo.png differ\n"
    b"diff --git a/long.txt b/long.txt\n"
    b"index bab081f..cdd5801 100644\n"
    b"--- a/long.txt\n"
    b"+++ b/long.txt\n"
    b"@@ -1,6 +1,6 @@\n"
    b" line 1\n"
    b" line 2\n"
    b"-line 3\n"
    b"+line three\n"
    b" line 4\n"
    b" line 5\n"
    b" line 6\n"
    b"@@ -32,7 +32,8 @@ line 31\n"
    b" line 32\n"
    b" line 33\n"
    b" line 34\n"
    b"-line 35\n"
    b"+line thirty-five\n"
    b"+line 35b\n"
    b" line 36\n"
    b" line 37\n"
    b" line 38\n"
    b"diff --git a/old_name.txt b/new_name.txt\n"
    b"similarity index 90%\n"
    b"rename from old_name.txt\n"
    b"rename to new_name.txt\n"
    b"index 04df23a..f04f294 100644\n"
    b"--- a/old_name.txt\n"
    b"+++ b/new_name.txt\n"
    b"@@ -2,7 +2,7 @@ keep 1\n"
    b" keep 2\n"
    b" keep 3\n"
    b" keep 4\n"
    b"-keep 5\n"
    b"+kept 5\n"
    b" keep 6\n"
    b" keep 7\n"
    b" keep 8\n"
    b"diff --git a/removed.txt b/removed.txt\n"
    b"deleted file mode 100644\n"
    b"index 286c5f5..0000000\n"
    b"--- a/removed.txt\n"
    b"+++ /dev/null\n"
    b"@@ -1 +0,0 @@\n"
    b"-gone\n"
    b"diff --git a/run.sh b/run.sh\n"
    b"old mode 100644\n"
    b"new mode 100755\n"
)

PURE_RENAME_WITH_SPACES = (
    "diff --git a/r.txt b/s p b/ace.txt\nsimilarity index 100%\nrename from r.txt\nrename to s p b/ace.txt\n"
)

NO_NEWLINE_AT_END = (
    "diff --git a/a.txt b/a.txt\n"
    "index 1..2 100644\n"
    "--- a/a.txt\n"
    "+++ b/a.txt\n"
    "@@ -1 +1,2 @@\n"
    "-old\n"
    "\\ No newline at end of file\n"
    "+new\n"
    "+last\n"
    "\\ No newline at end of file\n"
)


@pytest.fixture(scope="module")
def diff():
    return parse_diff(REAL_DIFF)


def test_every_kind_of_file_change_is_recognised(diff):
    by_path = {f.path: f for f in diff.files}
    assert set(by_path) == {"latin1.txt", "logo.png", "long.txt", "new_name.txt", "removed.txt", "run.sh"}
    assert by_path["latin1.txt"].status is FileStatus.ADDED
    assert by_path["logo.png"].is_binary and not by_path["logo.png"].hunks and not by_path["logo.png"].has_text
    assert by_path["long.txt"].status is FileStatus.MODIFIED and len(by_path["long.txt"].hunks) == 2
    renamed = by_path["new_name.txt"]
    assert renamed.status is FileStatus.RENAMED and renamed.old_path == "old_name.txt"
    assert by_path["removed.txt"].status is FileStatus.REMOVED and by_path["removed.txt"].is_removed
    assert by_path["run.sh"].mode_changed and (by_path["run.sh"].old_mode, by_path["run.sh"].new_mode) == (
        "100644",
        "100755",
    )
    assert not by_path["long.txt"].mode_changed


def test_added_lines_carry_their_new_line_numbers(diff):
    long = diff.file("long.txt")
    assert [(line.number, line.text) for line in long.added_lines()] == [
        (3, "line three"),
        (35, "line thirty-five"),
        (36, "line 35b"),
    ]
    assert (long.additions, long.deletions) == (3, 2)
    assert [(line.number, line.text) for line in diff.file("new_name.txt").added_lines()] == [(5, "kept 5")]


def test_text_that_is_not_utf8_is_decoded_with_replacement_characters(diff):
    [line] = diff.file("latin1.txt").added_lines()
    assert line.text == "caf\ufffd cr\ufffdme"


def test_a_pure_rename_whose_path_holds_spaces_and_b_slash():
    [file] = parse_diff(PURE_RENAME_WITH_SPACES).files
    assert (file.path, file.old_path, file.status, file.hunks) == ("s p b/ace.txt", "r.txt", FileStatus.RENAMED, ())


def test_no_newline_markers_are_not_lines():
    [file] = parse_diff(NO_NEWLINE_AT_END).files
    assert [(line.number, line.text) for line in file.added_lines()] == [(1, "new"), (2, "last")]


def test_quoted_paths_are_unquoted():
    text = (
        'diff --git "a/caf\\303\\251 \\"menu\\".txt" "b/caf\\303\\251 \\"menu\\".txt"\n'
        "new file mode 100644\n--- /dev/null\n"
        '+++ "b/caf\\303\\251 \\"menu\\".txt"\n@@ -0,0 +1 @@\n+x\n'
    )
    assert [f.path for f in parse_diff(text).files] == ['café "menu".txt']


def test_over_the_file_cap_the_rest_is_recorded_not_reviewed():
    text = "".join(added(f"f{i:04}.txt", "x") for i in range(3005))
    diff = parse_diff(text)
    assert len(diff.files) == 3000
    assert diff.omitted == tuple(f"f{i:04}.txt" for i in range(3000, 3005))
    assert diff.changed_files == 3005 and diff.omitted_count == 5


def test_an_empty_diff_has_no_files():
    assert parse_diff(b"").files == ()


# --- anchors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "line", "start_line", "expected"),
    [
        ("long.txt", 3, None, Anchor("long.txt", 3)),  # an added line
        ("long.txt", 1, None, Anchor("long.txt", 1)),  # a context line of the first hunk
        ("long.txt", 6, None, Anchor("long.txt", 6)),  # the last line of the first hunk
        ("long.txt", 7, None, None),  # between the hunks
        ("long.txt", 32, None, Anchor("long.txt", 32)),  # first line of the second hunk
        ("long.txt", 39, None, Anchor("long.txt", 39)),  # its last line (32 + 8 - 1)
        ("long.txt", 40, None, None),  # after it
        ("long.txt", 36, 35, Anchor("long.txt", 36, start_line=35)),  # a range in one hunk
        ("long.txt", 35, 35, Anchor("long.txt", 35)),  # a one-line range is one line
        ("long.txt", 35, 3, None),  # a range across two hunks
        ("long.txt", 3, 5, None),  # a range backwards
        ("new_name.txt", 5, None, Anchor("new_name.txt", 5)),  # renamed: the new path
        ("old_name.txt", 5, None, None),  # never the old path
        ("removed.txt", 1, None, None),  # a deleted file has no new side
        ("logo.png", 1, None, None),  # binary
        ("run.sh", 1, None, None),  # a mode change has no hunk
        ("latin1.txt", 1, None, Anchor("latin1.txt", 1)),
        ("latin1.txt", 2, None, None),
        ("nowhere.txt", 1, None, None),
        ("long.txt", None, None, None),  # a finding about the whole file
    ],
)
def test_anchor_only_inside_a_hunk_on_the_new_side(diff, path, line, start_line, expected):
    result = anchor(diff, path, line, start_line)
    assert result == expected
    if result is not None:
        assert result.side == "RIGHT"


def test_a_pure_deletion_hunk_anchors_nothing():
    text = (
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n"
        "@@ -1,3 +1,2 @@\n keep\n-drop\n keep too\n"
        "@@ -10,2 +9,0 @@\n-x\n-y\n"
    )
    diff = parse_diff(text)
    assert anchor(diff, "a.txt", 2) == Anchor("a.txt", 2)
    assert anchor(diff, "a.txt", 9) is None


def test_hunk_excerpt_is_the_window_asked_for(diff):
    second = diff.file("long.txt").hunks[1]
    assert second.excerpt(35, 36) == "@@ new lines 35-36 @@\n-line 35\n+line thirty-five\n+line 35b\n"


# --- GitHub's pull request files -------------------------------------------------


def test_github_files_patches_truncation_binary_and_renames():
    entries = [
        {
            "filename": "a.py",
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "patch": "@@ -1,2 +1,2 @@\n keep\n-old\n+new",
        },
        {"filename": "big.sql", "status": "modified", "additions": 90000, "deletions": 0, "changes": 90000},
        {"filename": "logo.png", "status": "added", "additions": 0, "deletions": 0, "changes": 0},
        {
            "filename": "new/name.py",
            "previous_filename": "old/name.py",
            "status": "renamed",
            "additions": 0,
            "deletions": 0,
            "changes": 0,
        },
        {"filename": "gone.py", "status": "removed", "additions": 3, "deletions": 3, "changes": 3},
    ]
    diff = from_github_files(entries, total_files=3200)
    a, big, logo, moved, gone = diff.files
    assert [(line.number, line.text) for line in a.added_lines()] == [(2, "new")]
    assert anchor(diff, "a.py", 2) == Anchor("a.py", 2) and anchor(diff, "a.py", 3) is None
    assert big.truncated and not big.has_text and anchor(diff, "big.sql", 1) is None
    assert logo.is_binary and not logo.truncated
    assert (moved.status, moved.old_path, moved.is_binary) == (FileStatus.RENAMED, "old/name.py", False)
    assert gone.is_removed and not gone.truncated
    assert diff.unlisted == 3195 and diff.changed_files == 3200


def test_github_files_over_the_cap():
    entries = [{"filename": f"f{i}", "status": "added", "changes": 1, "patch": "@@ -0,0 +1 @@\n+x"} for i in range(5)]
    diff = from_github_files(entries, max_files=3)
    assert [f.path for f in diff.files] == ["f0", "f1", "f2"] and diff.omitted == ("f3", "f4")


def test_only_newlines_end_lines():
    # A form feed or U+2028 inside a line is text; splitting on them would break the hunk.
    text = added("a.py", "x = 1\n\x0c\ny = '\u2028'\nz = 3")
    [file] = parse_diff(text).files
    assert [line.number for line in file.added_lines()] == [1, 2, 3, 4]
    assert [line.text for line in file.added_lines()][1:3] == ["\x0c", "y = '\u2028'"]
