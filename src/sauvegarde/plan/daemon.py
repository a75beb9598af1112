"""The scheduler behind ``sauvegarde daemon``: runs each asset when its schedule fires, plus jitter.

Runs are serial (so never two runs of one asset at once; the runner's per-asset file lock also keeps out a ``run``
started by hand). At start an asset whose schedule fired since its last attempt is due at once: that is the catch-up
after downtime. Stopping (``stop`` set, e.g. on SIGTERM) lets the current step finish and starts nothing new. Time
comes from an injected :class:`Clock`, so tests run days of schedule in milliseconds.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sauvegarde.plan.model import Plan


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Return after ``seconds``, or sooner when ``stop`` is set."""


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))


class Scheduler:
    """Decides when each asset runs next and calls ``run_asset`` for it."""

    def __init__(
        self,
        plan: Plan,
        run_asset: Callable[[str], None],
        last_attempt: Callable[[str], datetime | None],
        clock: Clock,
        rng: random.Random | None = None,
        max_sleep: float = 60.0,
        say: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.plan = plan
        self.run_asset = run_asset
        self.last_attempt = last_attempt
        self.clock = clock
        self.rng = rng or random.Random()
        self.max_sleep = max_sleep  # re-read the clock at least this often (suspend, clock changes)
        self.say = say
        self.tz = plan.tz()
        self.next_run: dict[str, datetime] = {}

    def _jitter(self) -> timedelta:
        spread = self.plan.settings.jitter.total_seconds()
        return timedelta(seconds=self.rng.uniform(0, spread)) if spread > 0 else timedelta(0)

    def plan_next(self, asset: str, now: datetime) -> datetime:
        return self.plan.assets[asset].schedule.next_after(now, self.tz) + self._jitter()

    def start(self) -> None:
        """First run times: now for an asset that missed a firing (or never ran), else its next firing."""
        now = self.clock.now()
        for name, asset in self.plan.assets.items():
            last = self.last_attempt(name)
            fired = asset.schedule.previous_at_or_before(now, self.tz)
            if last is None or last < fired:
                self.next_run[name] = now
                self.say(f"{name}: due now ({'never run' if last is None else 'missed ' + fired.isoformat()})")
            else:
                self.next_run[name] = self.plan_next(name, now)
                self.say(f"{name}: next run at {self.next_run[name].isoformat()}")

    def run_forever(self, stop: threading.Event) -> None:
        if not self.next_run:
            self.start()
        while not stop.is_set():
            now = self.clock.now()
            due = sorted((t, name) for name, t in self.next_run.items() if t <= now)
            for _, name in due:
                if stop.is_set():
                    return
                self.run_asset(name)
                self.next_run[name] = self.plan_next(name, self.clock.now())
                self.say(f"{name}: next run at {self.next_run[name].isoformat()}")
            if due:
                continue
            wake = min(self.next_run.values())
            self.clock.wait(min(self.max_sleep, (wake - now).total_seconds()), stop)
