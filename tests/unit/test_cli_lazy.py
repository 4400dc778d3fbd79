"""The root command loads a group's module only when one of its commands runs."""

from __future__ import annotations

from bot.cli import _Root, app


def test_the_root_listing_says_what_each_group_says_of_itself():
    for name, lazy in _Root.groups.items():
        assert lazy.help == lazy.load().help, name


def test_a_lazy_group_runs_its_commands(capsys):
    assert app(["vision", "check", "--help"], standalone_mode=False) == 0
    assert "--staged" in capsys.readouterr().out
