"""Drills of the plan's assets: what to drill (asset, repository, sample), running one, and which are due.

Without a choice on the command line, an asset is drilled from the repository and with the sample its ``[[drills]]``
entry names; an asset without one is drilled in full from its last repository (usually the off-site copy, the one
that matters on the day the site is gone). A drill that cannot even reach its snapshot is a failed drill with that
reason, recorded like any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sauvegarde.drill.run import DrillResult, drill_snapshot, judge, latest_snapshot, new_seed
from sauvegarde.drill.sample import parse_sample
from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.access import opened
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import asset_tag
from sauvegarde.state.db import StateDB


@dataclass(frozen=True)
class DrillTarget:
    asset: str
    repository: str
    sample: float  # 1.0: everything


def targets(
    plan: Plan, asset: str | None = None, repository: str | None = None, sample: float | None = None
) -> list[DrillTarget]:
    """The drills to run: of ``asset`` (else the plan's declared drills, else every asset), with the overrides."""
    if asset is not None:
        declared = [d for d in plan.drills if d.asset == asset and (repository is None or d.repository == repository)]
        names = [asset]
    else:
        declared = [d for d in plan.drills if repository is None or d.repository == repository]
        names = [] if declared else list(plan.assets)
    out = [
        DrillTarget(d.asset, d.repository, sample if sample is not None else parse_sample(d.sample)) for d in declared
    ]
    for name in names:
        if not declared:
            repo = repository or plan.assets[name].repositories[-1]
            out.append(DrillTarget(name, repo, sample if sample is not None else 1.0))
    return out


def run_drill(
    plan: Plan,
    target: DrillTarget,
    now: datetime,
    seed: int | None = None,
    scratch_root: str | None = None,
) -> DrillResult:
    """Drill ``target`` and judge it against the asset's RTO; failures to reach the snapshot are a failed drill."""
    t0 = time.monotonic()
    result = DrillResult(
        target.asset,
        target.repository,
        now,
        "",
        "",
        target.sample,
        new_seed() if seed is None else seed,
        rto_s=plan.assets[target.asset].rto.total_seconds(),
    )
    try:
        with opened(plan, target.repository) as repo:
            snap = latest_snapshot(repo, asset_tag(target.asset))
            result.snapshot_id, result.snapshot_time = snap.id, snap.datetime.isoformat()
            drill_snapshot(repo, snap, result, t0, scratch_root)
    except (SauvegardeError, OSError) as exc:
        result.errors.append({"path": "", "error": f"repository {target.repository}: {exc}"})
    result.seconds = round(time.monotonic() - t0, 3)
    judge(result)
    return result


def drill_due(plan: Plan, db: StateDB, target: DrillTarget, now: datetime, schedule_index: int) -> bool:
    """Whether the ``[[drills]]`` entry ``schedule_index`` fired since the last drill of its asset from its
    repository (never drilled: due)."""
    entry = plan.drills[schedule_index]
    done = db.drills(target.asset, target.repository)
    if not done:
        return True
    fired = entry.schedule.previous_at_or_before(now, plan.tz())
    return done[-1].started < fired.timestamp()


def due_drills(plan: Plan, db: StateDB, now: datetime, assets: list[str] | None = None) -> list[DrillTarget]:
    """The plan's declared drills (of ``assets`` when given) whose schedule fired since they last ran."""
    out = []
    for i, d in enumerate(plan.drills):
        if assets is not None and d.asset not in assets:
            continue
        target = DrillTarget(d.asset, d.repository, parse_sample(d.sample))
        if drill_due(plan, db, target, now, i):
            out.append(target)
    return out
