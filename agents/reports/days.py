"""A report's day: its bounds in the report's time zone, and the days a report may be asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agents.reports.model import SERIES_DAYS


@dataclass(frozen=True)
class ReportDay:
    """One day in a time zone, and the 14 days that end with it, as UTC bounds."""

    day: date
    tz: ZoneInfo

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz).astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self.start_of(self.day)

    @property
    def end(self) -> datetime:
        return self.start_of(self.day + timedelta(days=1))

    @property
    def series_days(self) -> list[date]:
        return [self.day - timedelta(days=n) for n in range(SERIES_DAYS - 1, -1, -1)]

    @property
    def series_bounds(self) -> list[datetime]:
        """SERIES_DAYS + 1 instants: day i of the series is [bounds[i], bounds[i + 1])."""
        return [self.start_of(d) for d in self.series_days] + [self.end]

    def local_date(self, instant: datetime) -> date:
        if instant.tzinfo is None:  # SQLite hands back the UTC wall clock
            instant = instant.replace(tzinfo=UTC)
        return instant.astimezone(self.tz).date()


# No delivery, run or decision is older; and a report reaches back SERIES_DAYS from its day,
# which near year 1 no calendar can.
EARLIEST_DAY = date(1970, 1, 1)


def parse_day(value: str, tz: str | ZoneInfo = "UTC", now: datetime | None = None) -> date:
    """`today`, `yesterday` (in the report's time zone) or YYYY-MM-DD from EARLIEST_DAY on;
    never a day still to come."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"a report date is today, yesterday or YYYY-MM-DD, not {value!r}") from None
    if day > today:
        raise ValueError(f"{day} has not started yet in {zone.key} (today is {today})")
    if day < EARLIEST_DAY:
        raise ValueError(f"reports start on {EARLIEST_DAY}, not {day}")
    return day
