"""Schedules: the simple forms, cron expressions, next/previous firing, longest gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sauvegarde.plan.schedule import Schedule, ScheduleError

T = datetime(2025, 3, 12, 10, 17, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hourly", datetime(2025, 3, 12, 11, 0, tzinfo=UTC)),
        ("hourly :30", datetime(2025, 3, 12, 10, 30, tzinfo=UTC)),
        ("daily 02:00", datetime(2025, 3, 13, 2, 0, tzinfo=UTC)),
        ("daily 23:59", datetime(2025, 3, 12, 23, 59, tzinfo=UTC)),
        ("weekly sun 03:00", datetime(2025, 3, 16, 3, 0, tzinfo=UTC)),
        ("weekly Wednesday 10:18", datetime(2025, 3, 12, 10, 18, tzinfo=UTC)),
        ("monthly 1 03:00", datetime(2025, 4, 1, 3, 0, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2025, 3, 12, 10, 30, tzinfo=UTC)),
        ("0 9-17 * * mon-fri", datetime(2025, 3, 12, 11, 0, tzinfo=UTC)),
        ("0 0 1 jan *", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 12 13 * fri", datetime(2025, 3, 12, 12, 0, tzinfo=UTC) + timedelta(days=1)),  # 13th OR Friday
    ],
)
def test_next_after(text: str, expected: datetime) -> None:
    assert Schedule.parse(text).next_after(T) == expected


def test_previous_at_or_before() -> None:
    s = Schedule.parse("daily 02:00")
    assert s.previous_at_or_before(T) == datetime(2025, 3, 12, 2, 0, tzinfo=UTC)
    assert s.previous_at_or_before(datetime(2025, 3, 12, 2, 0, tzinfo=UTC)) == datetime(2025, 3, 12, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "daily", "daily 2pm", "weekly xyz 03:00", "monthly 31 03:00", "* * *", "60 * * * *", "0 0 * * 8"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(text)


def test_longest_gap() -> None:
    assert Schedule.parse("hourly").longest_gap(T) == timedelta(hours=1)
    assert Schedule.parse("0 9-17 * * 1-5").longest_gap(T) == timedelta(hours=64)  # Friday 17:00 -> Monday 09:00


def test_wall_clock_across_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    s = Schedule.parse("daily 02:30")
    before = datetime(2025, 3, 29, 12, 0, tzinfo=paris)
    first = s.next_after(before)
    second = s.next_after(first)
    assert (first.hour, first.minute) == (2, 30)
    assert second.day == 31  # 02:30 does not exist on 30 March in Paris: the wall clock jumps from 02:00 to 03:00
