"""The report's small parts: days in a time zone, trend arrows, escaping, catch-up, links."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from agents.markdown import code, text
from agents.reports import ReportDay, parse_day
from agents.reports.markdown import trend
from bot.daily_report import missing_days

NOW = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)


def test_today_and_yesterday_are_in_the_report_time_zone():
    assert parse_day("today", "UTC", NOW) == date(2026, 3, 10)
    assert parse_day("today", "America/Los_Angeles", NOW) == date(2026, 3, 9)
    assert parse_day("yesterday", "Asia/Tokyo", NOW) == date(2026, 3, 9)
    assert parse_day("2026-03-01", "UTC", NOW) == date(2026, 3, 1)
    with pytest.raises(ValueError, match="has not started"):
        parse_day("2026-03-11", "UTC", NOW)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("03/01/2026", "UTC", NOW)


def test_a_day_with_a_clock_change_has_its_real_length():
    from zoneinfo import ZoneInfo

    spring = ReportDay(date(2026, 3, 29), ZoneInfo("Europe/Paris"))
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    autumn = ReportDay(date(2026, 10, 25), ZoneInfo("Europe/Paris"))
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600
    bounds = autumn.series_bounds
    assert len(bounds) == 15 and bounds[-2] == autumn.start and bounds[-1] == autumn.end


@pytest.mark.parametrize(
    ("today", "previous", "arrow"),
    [
        (10, [], "—"),
        (0, [0, 0], "→"),
        (3, [0, 0], "↑ new"),
        (12, [10, 10], "↑ +20%"),
        (8, [10, 10], "↓ -20%"),
        (10.2, [10, 10], "→"),
    ],
)
def test_trend_arrows(today, previous, arrow):
    assert trend(today, previous) == arrow


def test_outside_text_cannot_carry_markup_into_the_report():
    assert text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert text("a|b *c* [d](e)\nf") == "a\\|b \\*c\\* \\[d\\](e) f"
    assert code("rule`x|y") == "<code>rule\\`x\\|y</code>"  # a pipe, in a table cell or not


def test_catch_up_fills_gaps_after_the_first_report_only(tmp_path: Path):
    daily = tmp_path / "daily"
    day = date(2026, 3, 10)
    assert missing_days(tmp_path, day, 7) == []  # no report yet: the first run does not backfill
    daily.mkdir()
    for d in (date(2026, 3, 5), date(2026, 3, 7)):
        (daily / f"{d}.md").write_text("x")
    assert missing_days(tmp_path, day, 7) == [date(2026, 3, 6), date(2026, 3, 8), date(2026, 3, 9)]
    assert missing_days(tmp_path, day, 2) == [date(2026, 3, 8), date(2026, 3, 9)]
    assert missing_days(tmp_path, day, 0) == []
