"""Recording verdicts in the state database, and ``guard release``: an operator's acknowledgement of a verdict.

Snapshots are write-once, so a release rewrites the snapshot with ``guard.released`` (when, who, why) beside the
untouched evidence, then deletes the original; the rewritten snapshot has a new ID (as restic's ``tag`` does).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from sauvegarde.guard.guard import is_suspect
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.state.db import GuardRecord, StateDB


def record(db: StateDB, snap: Snapshot, repository: str, asset: str | None = None) -> None:
    """Store the verdict a snapshot carries (if it was guarded) in the state database."""
    g = snap.extra.get("guard")
    if not isinstance(g, dict):
        return
    db.record_guard(
        GuardRecord(
            snapshot_id=snap.id,
            repository=repository,
            asset=asset,
            time=snap.datetime.timestamp(),
            verdict=str(g.get("verdict", "")),
            score=float(g.get("score", 0.0)),
            summary=str(g.get("summary", "")),
            evidence=json.dumps(g, sort_keys=True),
        )
    )


def release(repo: Repository, snap: Snapshot, by: str, reason: str, now: float | None = None) -> Snapshot:
    """Rewrite a suspect snapshot as released; returns the new snapshot (the old one is deleted)."""
    if not is_suspect(snap):
        raise ValueError(f"snapshot {snap.short_id} is not flagged by the guard")
    new = copy.deepcopy(snap)
    guard: dict[str, Any] = new.extra["guard"]
    guard["released"] = {"time": time.time() if now is None else now, "by": by, "reason": reason, "was": snap.id}
    new.id = repo.save_snapshot(new)
    repo.delete_snapshot(snap.id)
    return new
