"""The daemon's scheduler with an injected clock: days of schedule run in milliseconds."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, datetime, timedelta

from plan_helpers import make_plan

from sauvegarde.plan.daemon import Scheduler
from sauvegarde.plan.model import Plan, parse_duration
from sauvegarde.plan.schedule import Schedule

START = datetime(2025, 3, 12, 10, 17, tzinfo=UTC)


class FakeClock:
    """Time moves only when the scheduler waits (or a run takes time); stops the scheduler at ``end``."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.t = start
        self.end = end
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.t

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        self.t += timedelta(seconds=seconds)
        if self.t >= self.end:
            stop.set()


def _two_assets(jitter: str = "0s") -> Plan:
    base = make_plan(schedule="hourly")
    data = base.assets["data"]
    assets = {"data": data, "db": data.model_copy(update={"schedule": Schedule.parse("daily 02:00")})}
    settings = base.settings.model_copy(update={"jitter": parse_duration(jitter)})
    return base.model_copy(update={"assets": assets, "settings": settings})


def _run(
    plan: Plan, last: dict[str, datetime | None], hours: float, run_takes: timedelta = timedelta(0)
) -> tuple[list[tuple[str, datetime]], FakeClock]:
    clock = FakeClock(START, START + timedelta(hours=hours))
    runs: list[tuple[str, datetime]] = []
    running: set[str] = set()

    def run_asset(name: str) -> None:
        assert name not in running  # never two runs of one asset at once
        running.add(name)
        runs.append((name, clock.now()))
        clock.t += run_takes
        running.discard(name)

    sched = Scheduler(plan, run_asset, lambda a: last.get(a), clock, rng=random.Random(1), max_sleep=3600)
    sched.run_forever(threading.Event())
    return runs, clock


def test_runs_on_schedule_after_catching_up() -> None:
    plan = _two_assets()
    recent = START - timedelta(minutes=5)  # data ran at 10:12, after its 10:00 firing: not due
    runs, _ = _run(plan, {"data": recent, "db": START - timedelta(days=3)}, hours=24)
    db_runs = [t for n, t in runs if n == "db"]
    assert db_runs[0] == START  # missed 02:00 while down: caught up at once
    assert db_runs[1] == datetime(2025, 3, 13, 2, 0, tzinfo=UTC)
    data_runs = [t for n, t in runs if n == "data"]
    assert data_runs[0] == datetime(2025, 3, 12, 11, 0, tzinfo=UTC)
    assert len(data_runs) == 24
    assert all(t.minute == 0 for t in data_runs)


def test_never_run_asset_is_due_at_once() -> None:
    runs, _ = _run(_two_assets(), {}, hours=0.5)
    assert sorted(n for n, t in runs if t == START) == ["data", "db"]


def test_jitter_delays_within_the_bound() -> None:
    plan = _two_assets(jitter="10m")
    runs, _ = _run(plan, {"data": START, "db": START}, hours=6)
    data_runs = [t for n, t in runs if n == "data"]
    delays = [(t - t.replace(minute=0, second=0, microsecond=0)) for t in data_runs]
    assert all(timedelta(0) <= d <= timedelta(minutes=10) for d in delays)
    assert len({d for d in delays}) > 1


def test_long_run_does_not_overlap_itself() -> None:
    runs, _ = _run(_two_assets(), {}, hours=5, run_takes=timedelta(minutes=90))
    data_runs = [t for n, t in runs if n == "data"]
    assert all(b - a >= timedelta(minutes=90) for a, b in itertools.pairwise(data_runs))


def test_stop_before_start_runs_nothing() -> None:
    stop = threading.Event()
    stop.set()
    clock = FakeClock(START, START)
    calls: list[str] = []
    Scheduler(_two_assets(), calls.append, lambda _a: None, clock).run_forever(stop)
    assert calls == []
