"""Schedules of the plan: cron expressions and the simple forms ``hourly``, ``daily 02:00``, ``weekly sun 03:00``.

A :class:`Schedule` answers two questions on the wall clock of a time zone: when does it fire next after a moment,
and when did it last fire at or before a moment. Both are computed minute by minute over a bounded horizon, which
is simple and fast enough for five-field cron expressions (at most a year of minutes is never scanned: the search
jumps over hours and days that cannot match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_DOW = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_CRON_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
HORIZON = timedelta(days=400)

EXPECTED = (
    "expected `hourly`, `hourly :MM`, `daily HH:MM`, `weekly DAY HH:MM` (DAY one of mon..sun), "
    "`monthly DD HH:MM` or a five-field cron expression such as `30 2 * * *`"
)


class ScheduleError(ValueError):
    """The text is not a schedule; the message says what is expected."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the sets of minutes, hours, days of month, months and days of week (0 = Sunday)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool  # day of month was ``*``
    any_weekday: bool  # day of week was ``*``

    @classmethod
    def parse(cls, text: str) -> Schedule:
        words = text.strip().lower().split()
        if not words:
            raise ScheduleError(f"empty schedule: {EXPECTED}")
        return cls._cron(text, _simple(words) or words)

    @classmethod
    def _cron(cls, text: str, fields: list[str]) -> Schedule:
        if len(fields) != 5:
            raise ScheduleError(f"invalid schedule {text!r}: {EXPECTED}")
        sets = []
        for value, (name, lo, hi) in zip(fields, _FIELDS, strict=True):
            names = _CRON_MONTHS if name == "month" else _CRON_DOW if name == "day of week" else {}
            sets.append(_cron_field(text, value, name, lo, hi, names))
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(text, sets[0], sets[1], sets[2], sets[3], weekdays, fields[2] == "*", fields[4] == "*")

    def matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        return self._day_matches(t)

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # cron: when one of them is restricted, it alone decides
            return dom and dow
        return dom or dow  # both restricted: either matches (cron's rule)

    def next_after(self, moment: datetime, tz: tzinfo | None = None) -> datetime:
        """The first firing strictly after ``moment`` (aware), on the wall clock of ``tz`` (default: its own)."""
        local = moment.astimezone(tz) if tz is not None else moment
        t = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = local + HORIZON
        while t <= end:
            if t.month not in self.months or not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in self.minutes:
                return t
            t += timedelta(minutes=1)
        raise ScheduleError(f"schedule {self.text!r} never fires")

    def previous_at_or_before(self, moment: datetime, tz: tzinfo | None = None) -> datetime:
        """The last firing at or before ``moment`` (aware)."""
        local = moment.astimezone(tz) if tz is not None else moment
        t = local.replace(second=0, microsecond=0)
        end = local - HORIZON
        while t >= end:
            if t.month not in self.months or not self._day_matches(t):
                t = t.replace(hour=23, minute=59) - timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=59) - timedelta(hours=1)
                continue
            if t.minute in self.minutes:
                return t
            t -= timedelta(minutes=1)
        raise ScheduleError(f"schedule {self.text!r} never fires")

    def longest_gap(self, start: datetime, span: timedelta = timedelta(days=35)) -> timedelta:
        """The longest time between two successive firings over ``span`` from ``start``: the worst case for RPO."""
        t = self.next_after(start)
        end = start + span
        gap = timedelta(0)
        while t < end:
            n = self.next_after(t)
            gap = max(gap, n - t)
            t = n
        return gap

    def __str__(self) -> str:
        return self.text


def _simple(words: list[str]) -> list[str] | None:
    """The cron fields of a simple form, or None when ``words`` is not one."""
    kind, args = words[0], words[1:]
    if kind == "hourly":
        if not args:
            return ["0", "*", "*", "*", "*"]
        if len(args) == 1 and re.fullmatch(r":?[0-5]?\d", args[0]):
            return [str(int(args[0].lstrip(":"))), "*", "*", "*", "*"]
        raise ScheduleError(f"invalid schedule {' '.join(words)!r}: {EXPECTED}")
    if kind in ("daily", "weekly", "monthly"):
        need = {"daily": 1, "weekly": 2, "monthly": 2}[kind]
        if len(args) != need or not _TIME.match(args[-1]):
            raise ScheduleError(f"invalid schedule {' '.join(words)!r}: {EXPECTED}")
        m = _TIME.match(args[-1])
        assert m is not None
        hour, minute = str(int(m.group(1))), str(int(m.group(2)))
        if kind == "daily":
            return [minute, hour, "*", "*", "*"]
        if kind == "weekly":
            day = args[0][:3]
            if day not in _DAYS:
                raise ScheduleError(f"invalid day {args[0]!r} in {' '.join(words)!r}: use mon, tue, ... sun")
            return [minute, hour, "*", "*", day]
        if not args[0].isdigit() or not 1 <= int(args[0]) <= 28:
            raise ScheduleError(f"invalid day {args[0]!r} in {' '.join(words)!r}: use 1 to 28")
        return [minute, hour, args[0], "*", "*"]
    return None


def _cron_field(text: str, value: str, name: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in value.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if step < 1:
                raise ValueError
            if base == "*":
                start, stop = lo, hi
            elif "-" in base:
                a, b = base.split("-", 1)
                start, stop = _cron_value(a, names), _cron_value(b, names)
            else:
                start = _cron_value(base, names)
                stop = hi if step_text else start
        except ValueError:
            raise ScheduleError(f"invalid {name} field {part!r} in cron expression {text!r}") from None
        if not (lo <= start <= hi and lo <= stop <= hi and start <= stop):
            raise ScheduleError(f"{name} {part!r} out of range {lo}-{hi} in cron expression {text!r}")
        out.update(range(start, stop + 1, step))
    return frozenset(out)


def _cron_value(text: str, names: dict[str, int]) -> int:
    return names[text[:3]] if text[:3] in names else int(text)
