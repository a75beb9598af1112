"""Gathering the observed state the compliance rules need: snapshots in each repository, disks, the state database.

Repositories are opened without locks and without their index (snapshot objects are all that is read); one that
cannot be opened is recorded as unreachable with the reason, and the others are still observed.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.access import opened
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observed import AssetState, CheckFact, DrillFact, Observation, RepositoryState, SnapshotFact
from sauvegarde.repository import Snapshot
from sauvegarde.state.db import DrillRecord, StateDB

ASSET_TAG = "asset:"


def asset_tag(asset: str) -> str:
    return ASSET_TAG + asset


def asset_of(snap: Snapshot) -> str | None:
    for t in snap.tags:
        if t.startswith(ASSET_TAG):
            return t[len(ASSET_TAG) :]
    return None


def snapshot_fact(snap: Snapshot) -> SnapshotFact:
    summary = snap.summary or {}
    errors = summary.get("errors", 0)
    return SnapshotFact(snap.datetime, good=not errors, size=int(summary.get("bytes_processed", 0) or 0))


def drill_fact(d: DrillRecord) -> DrillFact:
    return DrillFact(
        _at(d.started),
        d.repository,
        d.duration_s,
        d.bytes,
        d.passed,
        d.errors,
        d.estimated_full_s,
        d.ttfb_s,
        d.throughput,
        d.sample,
        d.message,
    )


def device_of(path: str) -> int | None:
    """st_dev of ``path``, or of its nearest existing parent (a repository not created yet lands there)."""
    p = os.path.abspath(os.path.expanduser(path))
    while True:
        try:
            return os.stat(p).st_dev
        except OSError:
            parent = os.path.dirname(p)
            if parent == p:
                return None
            p = parent


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def observe_repository(plan: Plan, name: str, db: StateDB | None) -> RepositoryState:
    state = RepositoryState(name)
    repo_plan = plan.repositories[name]
    if repo_plan.local_path is not None:
        state.device = device_of(repo_plan.local_path)
    try:
        with opened(plan, name, lock=None, load_index=False) as repo:
            state.repo_id = repo.config.repo_id
            policy = repo.config.immutability
            state.immutable_days = policy.days if policy is not None else None
            for snap in repo.snapshots():
                asset = asset_of(snap)
                if asset is not None:
                    state.snapshots.setdefault(asset, []).append(snapshot_fact(snap))
    except (SauvegardeError, OSError) as exc:
        state.reachable = False
        state.error = str(exc)
    if db is not None:
        last = db.last_step("check", repository=name, outcomes=("ok", "failed"))
        if last is not None:
            state.last_check = CheckFact(_at(last.started), last.errors)
        upkeep = db.last_step("prune", repository=name, outcomes=("ok",))
        if upkeep is not None:
            state.last_upkeep = _at(upkeep.started)
    return state


def observe_asset(plan: Plan, name: str, db: StateDB | None) -> AssetState:
    state = AssetState(name)
    for p in plan.assets[name].expanded_paths():
        try:
            state.devices[p] = os.stat(p).st_dev
        except OSError:
            continue
    if db is not None:
        last = db.last_step("backup", asset=name, outcomes=("ok", "partial"))
        state.last_backup_duration_s = last.duration_s if last is not None else None
        state.drills = [drill_fact(d) for d in db.drills(name)]
    return state


def observe(plan: Plan, db: StateDB | None, now: datetime) -> Observation:
    return Observation(
        now=now,
        repositories={name: observe_repository(plan, name, db) for name in plan.repositories},
        assets={name: observe_asset(plan, name, db) for name in plan.assets},
    )
