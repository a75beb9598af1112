"""What the dashboard shows, gathered from the plan, its repositories and the state database.

Observing every repository costs a key derivation each (repositories are opened afresh), so one gathering is reused
for ``ttl`` seconds and dropped when an action finishes. Browsing keeps one open repository per plan repository in a
:class:`RepositoryPool` (opened without a lock: the dashboard only reads), so the key is derived once per start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sauvegarde.engine.browse import Browser, short_ids
from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.access import open_repository
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import asset_of, observe
from sauvegarde.plan.observed import Observation
from sauvegarde.plan.rules import Finding, evaluate
from sauvegarde.plan.status import asset_status
from sauvegarde.repository import Snapshot
from sauvegarde.state.db import DrillRecord, StateDB, Step
from sauvegarde.state.peers import GuardVerdict, guard_verdicts
from sauvegarde.util.urls import redact_url

Clock = Callable[[], datetime]


@dataclass
class Overview:
    """One gathering: per-asset status (as ``status --json``), per-repository facts and the findings."""

    now: datetime
    assets: list[dict[str, object]]
    repositories: list[dict[str, object]]
    findings: list[Finding]
    observation: Observation
    gathered_in: float = 0.0


def repository_rows(plan: Plan, obs: Observation, assets: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per repository: reachable, snapshot count, its worst light across the assets it holds, the last check."""
    order = {"green": 0, "amber": 1, "red": 2}
    rows: list[dict[str, object]] = []
    for name, rp in plan.repositories.items():
        state = obs.repository(name)
        lights = [
            str(r["colour"])
            for a in assets
            for r in a["repositories"]  # type: ignore[attr-defined]
            if r["repository"] == name
        ]
        light = max(lights, key=lambda c: order[c]) if lights else ("green" if state.reachable else "red")
        if not state.reachable:
            light = "red"
        rows.append(
            {
                "repository": name,
                "url": redact_url(rp.url),
                "reachable": state.reachable,
                "error": redact_url(state.error),
                "snapshots": sum(len(v) for v in state.snapshots.values()),
                "colour": light,
                "last_check": state.last_check.time.isoformat() if state.last_check else None,
                "check_errors": state.last_check.errors if state.last_check else None,
                "immutable_days": state.immutable_days,
            }
        )
    return rows


class OverviewCache:
    """The latest :class:`Overview`, gathered again when older than ``ttl`` seconds or invalidated."""

    def __init__(self, plan: Plan, db: StateDB, clock: Clock, ttl: float = 15.0) -> None:
        self.plan, self.db, self.clock, self.ttl = plan, db, clock, ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, Overview] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def get(self) -> Overview:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            start = time.perf_counter()
            obs = observe(self.plan, self.db, self.clock())
            findings = evaluate(self.plan, obs)
            assets = asset_status(self.plan, obs, findings)
            overview = Overview(obs.now, assets, repository_rows(self.plan, obs, assets), findings, obs)
            overview.gathered_in = time.perf_counter() - start
            self._cached = (time.monotonic(), overview)
            return overview


@dataclass
class SnapshotRow:
    snap: Snapshot
    dir_name: str  # its directory under ``ids/`` in the browser's layout
    asset: str | None

    def _summary(self, key: str) -> int:
        value = (self.snap.summary or {}).get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    @property
    def files(self) -> int:
        return self.snap.files

    @property
    def size(self) -> int:
        return self._summary("bytes_processed")

    @property
    def added(self) -> int:
        return self._summary("bytes_added")

    @property
    def errors(self) -> int:
        errors = (self.snap.summary or {}).get("errors", 0)
        return len(errors) if isinstance(errors, list) else int(errors or 0)


@dataclass
class RepositoryPool:
    """One open repository and its :class:`Browser` per plan repository, opened on first use, reopened after
    an error (a prune elsewhere may have moved packs)."""

    plan: Plan
    refresh_interval: float = 5.0
    _browsers: dict[str, Browser] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def browser(self, name: str) -> Browser:
        if name not in self.plan.repositories:
            raise KeyError(name)
        with self._lock:
            hit = self._browsers.get(name)
            if hit is None:
                repo = open_repository(self.plan, name, lock=None)
                hit = self._browsers[name] = Browser(repo, refresh_interval=self.refresh_interval)
            return hit

    def drop(self, name: str) -> None:
        with self._lock:
            b = self._browsers.pop(name, None)
        if b is not None:
            b.repo.close()

    def close(self) -> None:
        for name in list(self._browsers):
            self.drop(name)

    def snapshots(self, name: str, refresh: bool = True) -> list[SnapshotRow]:
        """The repository's snapshots, newest first, with their browser directory names."""
        try:
            browser = self.browser(name)
            if refresh:
                browser.refresh(force=True)
        except (SauvegardeError, OSError):
            self.drop(name)
            raise
        snaps = sorted(browser.snapshots, key=lambda s: (s.datetime, s.id))
        rows = [SnapshotRow(s, d.decode(), asset_of(s)) for s, d in zip(snaps, short_ids(snaps), strict=True)]
        return rows[::-1]


@dataclass(frozen=True)
class History:
    """What the state database remembers: backup steps, drills and guard verdicts (oldest first)."""

    backups: list[Step]
    drills: list[DrillRecord]
    guard: list[GuardVerdict]


def history(db: StateDB) -> History:
    backups = [s for s in db.steps() if s.kind == "backup"]
    backups.sort(key=lambda s: s.started)
    return History(backups, db.drills(), guard_verdicts(db))


def when(ts: float | str | None) -> str:
    """A timestamp (epoch seconds or ISO 8601) as ``YYYY-MM-DD HH:MM`` UTC, or a dash."""
    if ts is None:
        return "—"
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts)
        except ValueError:
            return ts
    else:
        dt = datetime.fromtimestamp(ts, UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
