"""The history behind the report's charts, as time series: stored size per repository, backup durations, the age of
the newest good backup against the RPO, drills with their measured and estimated restore times, guard verdicts.

Read from the state database (steps, drills, guard verdicts) and the observed snapshots; pure data, no drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import drill_fact
from sauvegarde.plan.observed import Observation
from sauvegarde.plan.rules import drill_estimate
from sauvegarde.state.db import StateDB
from sauvegarde.state.peers import guard_verdicts

Point = tuple[datetime, float]


@dataclass(frozen=True)
class DrillPoint:
    time: datetime
    asset: str
    repository: str
    duration_s: float
    estimate_s: float | None
    rto_s: float
    passed: bool


@dataclass(frozen=True)
class Verdict:
    time: datetime
    asset: str
    verdict: str  # clean, suspicious, attack (as recorded)
    released: bool


@dataclass
class Compliance:
    """The age of the asset's newest good backup over time: a saw tooth that must stay under the RPO."""

    asset: str
    rpo_s: float
    points: list[Point] = field(default_factory=list)  # (time, age in seconds)
    share_within: float | None = None  # share of the time since the first backup spent within the RPO


@dataclass
class History:
    stored: dict[str, list[Point]] = field(default_factory=dict)  # repository -> bytes over time
    measured: dict[str, Point] = field(default_factory=dict)  # repository -> bytes listed now
    durations: dict[str, list[tuple[datetime, float, bool]]] = field(default_factory=dict)  # asset -> (t, s, ok)
    compliance: list[Compliance] = field(default_factory=list)
    drills: list[DrillPoint] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def stored_series(plan: Plan, db: StateDB) -> dict[str, list[Point]]:
    """Per repository, the bytes written by backups and copies less the bytes prune freed, accumulated."""
    totals: dict[str, float] = {}
    out: dict[str, list[Point]] = {}
    for s in db.steps():
        if s.repository not in plan.repositories or s.outcome not in ("ok", "partial"):
            continue
        if s.kind in ("backup", "copy"):
            delta = float(s.bytes)
        elif s.kind == "prune":
            delta = -float(s.bytes)
        else:
            continue
        totals[s.repository] = max(0.0, totals.get(s.repository, 0.0) + delta)
        out.setdefault(s.repository, []).append((_at(s.started + s.duration_s), totals[s.repository]))
    for points in out.values():
        points.sort(key=lambda p: p[0])
    return out


def durations(plan: Plan, db: StateDB) -> dict[str, list[tuple[datetime, float, bool]]]:
    out: dict[str, list[tuple[datetime, float, bool]]] = {}
    for s in db.steps():
        if s.kind == "backup" and s.asset in plan.assets and s.outcome in ("ok", "partial", "failed"):
            out.setdefault(s.asset, []).append((_at(s.started), s.duration_s, s.outcome != "failed"))
    return out


def compliance(plan: Plan, obs: Observation, db: StateDB) -> list[Compliance]:
    """Per asset: good backups are the recorded successful backups and the good snapshots still held."""
    good: dict[str, set[float]] = {name: set() for name in plan.assets}
    for s in db.steps():
        if s.kind == "backup" and s.asset in good and s.outcome == "ok":
            good[s.asset].add(s.started)
    for name, asset in plan.assets.items():
        for r in asset.repositories:
            for snap in obs.repository(r).good_snapshots(name):
                good[name].add(snap.time.timestamp())
    now = obs.now.timestamp()
    out = []
    for name, asset in plan.assets.items():
        times = sorted(t for t in good[name] if t <= now)
        c = Compliance(name, asset.rpo.total_seconds())
        if times:
            c.points.append((_at(times[0]), 0.0))
            within = 0.0
            for prev, t in zip(times, [*times[1:], now], strict=True):
                age = t - prev
                c.points.append((_at(t), age))
                if t != now:
                    c.points.append((_at(t), 0.0))
                within += min(age, c.rpo_s)
            span = now - times[0]
            c.share_within = within / span if span > 0 else 1.0
        out.append(c)
    return out


def drill_points(plan: Plan, obs: Observation, db: StateDB) -> list[DrillPoint]:
    out = []
    for d in db.drills():
        if d.asset not in plan.assets:
            continue
        estimate = drill_estimate(d.asset, plan, obs, drill_fact(d))
        rto = d.rto_s if d.rto_s is not None else plan.assets[d.asset].rto.total_seconds()
        out.append(
            DrillPoint(
                _at(d.started),
                d.asset,
                d.repository,
                d.duration_s,
                estimate.total_seconds() if estimate is not None else None,
                rto,
                d.passed,
            )
        )
    return out


def verdicts(plan: Plan, db: StateDB) -> list[Verdict]:
    return [
        Verdict(_at(v.time), v.asset, v.verdict.lower(), v.released)
        for v in guard_verdicts(db)
        if v.asset in plan.assets
    ]


def history(plan: Plan, obs: Observation, db: StateDB, measured: dict[str, int | None]) -> History:
    return History(
        stored=stored_series(plan, db),
        measured={r: (obs.now, float(n)) for r, n in measured.items() if n is not None},
        durations=durations(plan, db),
        compliance=compliance(plan, obs, db),
        drills=drill_points(plan, obs, db),
        verdicts=verdicts(plan, db),
    )
