"""Retention: which snapshots a ``--keep-*`` policy keeps, and why. Pure functions, no I/O.

The semantics are restic's (``forget``): snapshots are considered newest first; each bucket rule (last, hourly,
daily, weekly, monthly, yearly) keeps the newest snapshot of each distinct period until it has kept N of them (-1:
no limit), and, while it still has count left, also the oldest snapshot of all, which stretches the history kept. A
snapshot can be kept by several rules and lists every reason. ``keep_within`` keeps everything newer than the
duration before the reference time (by default the newest snapshot, as restic does, so a host that stopped backing
up does not lose its history), and ``keep_within_<period>`` keeps one snapshot per period within such a duration.

Periods are computed on the wall clock of the given time zone: days, ISO weeks (ISO year and week number), months
and years change at local midnight. Hours are real hours: the hour repeated when clocks fall back counts twice.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from sauvegarde.errors import UsageError
from sauvegarde.repository import Snapshot
from sauvegarde.repository.snapshot import parse_time

GROUP_FIELDS = frozenset({"host", "paths", "tags"})
PERIODS = ("hourly", "daily", "weekly", "monthly", "yearly")

# ---- durations ------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)([ymdh])")


@dataclass(frozen=True)
class Duration:
    """A calendar duration as restic writes it: ``1y2m3d4h`` (years, months, days, hours)."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        s = text.strip()
        parts = _DURATION_PART.findall(s)
        if not s or "".join(n + u for n, u in parts) != s:
            raise UsageError(f"invalid duration {text!r}: expected numbers with units y, m, d, h, e.g. 1y2m3d4h")
        values = {"y": 0, "m": 0, "d": 0, "h": 0}
        for number, unit in parts:
            values[unit] += int(number)
        return cls(years=values["y"], months=values["m"], days=values["d"], hours=values["h"])

    @property
    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def before(self, moment: datetime, tz: tzinfo) -> datetime:
        """``moment`` minus this duration: years, months and days on the wall clock of ``tz``, then real hours.

        A day that does not exist in the target month is clamped to its last day (31 March - 1m = 28/29 February).
        """
        try:
            return self._before(moment, tz)
        except OverflowError:  # reaches before year 1: everything is within
            return datetime.min.replace(tzinfo=UTC)

    def _before(self, moment: datetime, tz: tzinfo) -> datetime:
        local = moment.astimezone(tz)
        month_index = local.year * 12 + (local.month - 1) - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        month += 1
        if year < 1:
            return datetime.min.replace(tzinfo=UTC)
        day = min(local.day, calendar.monthrange(year, month)[1])
        wall = local.replace(year=year, month=month, day=day, fold=0)
        wall -= timedelta(days=self.days)
        # The zone's offset at the new wall time applies (across DST changes); hours are then real hours.
        start = wall.astimezone(UTC)
        return start - timedelta(hours=self.hours)

    def __str__(self) -> str:
        text = "".join(f"{v}{u}" for v, u in zip(self._values(), "ymdh", strict=True) if v)
        return text or "0h"

    def _values(self) -> tuple[int, int, int, int]:
        return (self.years, self.months, self.days, self.hours)


# ---- policy ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep. Counts are ``None`` or 0 for "rule not used", -1 for "no limit"."""

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: Duration | None = None
    keep_within_hourly: Duration | None = None
    keep_within_daily: Duration | None = None
    keep_within_weekly: Duration | None = None
    keep_within_monthly: Duration | None = None
    keep_within_yearly: Duration | None = None
    keep_tags: tuple[str, ...] = ()  # each entry "a" or "a,b" (all of these tags); entries are OR-ed

    def counts(self) -> list[tuple[str, int | None]]:
        return [
            ("last", self.keep_last),
            ("hourly", self.keep_hourly),
            ("daily", self.keep_daily),
            ("weekly", self.keep_weekly),
            ("monthly", self.keep_monthly),
            ("yearly", self.keep_yearly),
        ]

    def withins(self) -> list[tuple[str, Duration | None]]:
        return [
            ("hourly", self.keep_within_hourly),
            ("daily", self.keep_within_daily),
            ("weekly", self.keep_within_weekly),
            ("monthly", self.keep_within_monthly),
            ("yearly", self.keep_within_yearly),
        ]

    def validate(self) -> None:
        """Refuse negative counts other than -1, and a policy that would keep nothing."""
        for name, n in self.counts():
            if n is not None and n < -1:
                raise UsageError(f"--keep-{name} {n}: only -1 (no limit) or a count from 0 up is allowed")
        if self.is_empty:
            raise UsageError("empty retention policy: give at least one --keep-* option (nothing was removed)")

    @property
    def is_empty(self) -> bool:
        return (
            all(not n for _, n in self.counts())
            and all(d is None or d.is_zero for _, d in self.withins())
            and (self.keep_within is None or self.keep_within.is_zero)
            and not any(_tag_set(t) for t in self.keep_tags)
        )


@dataclass(frozen=True)
class Decision:
    snapshot: Snapshot
    keep: bool
    reasons: tuple[str, ...] = ()


def _tag_set(entry: str) -> frozenset[str]:
    return frozenset(t for t in entry.split(",") if t)


# ---- periods --------------------------------------------------------------------------------------------

PeriodKey = tuple[int, ...]


def _hour(t: datetime) -> PeriodKey:
    offset = t.utcoffset() or timedelta(0)
    return (t.year, t.month, t.day, t.hour, int(offset.total_seconds()))


def _day(t: datetime) -> PeriodKey:
    return (t.year, t.month, t.day)


def _week(t: datetime) -> PeriodKey:
    iso = t.isocalendar()
    return (iso.year, iso.week)


def _month(t: datetime) -> PeriodKey:
    return (t.year, t.month)


def _year(t: datetime) -> PeriodKey:
    return (t.year,)


PERIOD_KEYS: dict[str, Callable[[datetime], PeriodKey]] = {
    "hourly": _hour,
    "daily": _day,
    "weekly": _week,
    "monthly": _month,
    "yearly": _year,
}


def period_key(period: str, moment: datetime, tz: tzinfo) -> PeriodKey:
    """The period (``hourly``, ``daily``, ...) ``moment`` falls in, on the wall clock of ``tz``."""
    return PERIOD_KEYS[period](moment.astimezone(tz))


# ---- applying a policy ----------------------------------------------------------------------------------


def snapshot_instant(s: Snapshot) -> datetime:
    return parse_time(s.time)


def newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    return sorted(snapshots, key=lambda s: (snapshot_instant(s), s.id), reverse=True)


@dataclass
class _Bucket:
    reason: str
    count: int  # remaining; -1 means no limit
    key: Callable[[datetime, int], object]
    last: object = None


def apply_policy(
    snapshots: Sequence[Snapshot], policy: RetentionPolicy, tz: tzinfo, now: datetime | None = None
) -> list[Decision]:
    """Decide for each snapshot whether ``policy`` keeps it, newest first, with the reasons.

    ``tz`` is the zone whose wall clock defines hours, days, weeks, months and years. ``now`` is the reference
    for the ``keep_within*`` rules; by default the newest snapshot's time (restic's behaviour).
    Raises :class:`UsageError` for an empty or invalid policy: an empty policy would remove everything.
    """
    policy.validate()
    ordered = newest_first(snapshots)
    if not ordered:
        return []
    times = [snapshot_instant(s).astimezone(tz) for s in ordered]
    reference = now if now is not None else times[0]

    buckets = [_Bucket(f"{name} snapshot", n, _bucket_key(name)) for name, n in policy.counts() if n is not None and n]
    within_cutoff = None
    if policy.keep_within is not None and not policy.keep_within.is_zero:
        within_cutoff = policy.keep_within.before(reference, tz)
    within_buckets = [
        (_Bucket(f"{name} within {d}", -1, _bucket_key(name)), d.before(reference, tz))
        for name, d in policy.withins()
        if d is not None and not d.is_zero
    ]
    tag_rules = [(entry, _tag_set(entry)) for entry in policy.keep_tags if _tag_set(entry)]

    decisions: list[Decision] = []
    last_index = len(ordered) - 1
    for nr, (snap, t) in enumerate(zip(ordered, times, strict=True)):
        reasons: list[str] = []
        have = set(snap.tags)
        reasons.extend(f"tag {entry}" for entry, wanted in tag_rules if wanted <= have)
        if within_cutoff is not None and t > within_cutoff:
            reasons.append(f"within {policy.keep_within}")
        for b in buckets:
            if b.count == 0:
                continue
            value = b.key(t, nr)
            # Also keep the oldest snapshot while a rule has count left: it maximises the history kept.
            if value != b.last or nr == last_index:
                b.last = value
                if b.count > 0:
                    b.count -= 1
                reasons.append(b.reason)
        for b, cutoff in within_buckets:
            if t > cutoff:
                value = b.key(t, nr)
                if value != b.last or nr == last_index:
                    b.last = value
                    reasons.append(b.reason)
        decisions.append(Decision(snap, keep=bool(reasons), reasons=tuple(reasons)))
    return decisions


def _bucket_key(name: str) -> Callable[[datetime, int], object]:
    """The bucket of a snapshot from its local time and its rank (newest is 0): every rank is its own bucket for
    ``last``."""
    if name == "last":
        return lambda _t, nr: nr
    key = PERIOD_KEYS[name]
    return lambda t, _nr: key(t)


# ---- grouping -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupKey:
    """What the snapshots of a group share; a field is ``None`` when the grouping does not use it."""

    hostname: str | None = None
    paths: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON shape: ``host``, ``paths`` and ``tags``, each ``None`` when not grouped by."""
        return {
            "host": self.hostname,
            "paths": None if self.paths is None else list(self.paths),
            "tags": None if self.tags is None else list(self.tags),
        }

    def describe(self) -> str:
        parts = []
        if self.hostname is not None:
            parts.append(f"host [{self.hostname}]")
        if self.paths is not None:
            parts.append(f"paths [{', '.join(self.paths)}]")
        if self.tags is not None:
            parts.append(f"tags [{', '.join(self.tags)}]")
        return ", ".join(parts) or "all snapshots"


@dataclass
class SnapshotGroup:
    key: GroupKey
    snapshots: list[Snapshot] = field(default_factory=list)


def parse_group_by(text: str) -> frozenset[str]:
    """``"host,paths"`` -> ``{"host", "paths"}``; an empty string means one group for everything."""
    fields = frozenset(f.strip() for f in text.split(",") if f.strip())
    unknown = fields - GROUP_FIELDS
    if unknown:
        raise UsageError(f"unknown --group-by field(s) {', '.join(sorted(unknown))}: use host, paths, tags")
    return fields


def group_snapshots(snapshots: Iterable[Snapshot], group_by: Iterable[str]) -> list[SnapshotGroup]:
    """Split snapshots by the fields in ``group_by`` (host, paths, tags; paths and tags compared as sets).

    Groups come in the order of their first snapshot; each keeps the order of the input.
    """
    fields = frozenset(group_by)
    unknown = fields - GROUP_FIELDS
    if unknown:
        raise UsageError(f"unknown group-by field(s) {', '.join(sorted(unknown))}: use host, paths, tags")
    groups: dict[GroupKey, SnapshotGroup] = {}
    for s in snapshots:
        key = GroupKey(
            hostname=s.hostname if "host" in fields else None,
            paths=tuple(sorted(set(s.paths))) if "paths" in fields else None,
            tags=tuple(sorted(set(s.tags))) if "tags" in fields else None,
        )
        groups.setdefault(key, SnapshotGroup(key)).snapshots.append(s)
    return list(groups.values())
