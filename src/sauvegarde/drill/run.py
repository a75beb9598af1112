"""One restore drill: restore (a sample of) the latest snapshot of an asset from one repository into a scratch
directory, verify every byte and the metadata, measure, extrapolate the full restore time and judge it.

Measurements (wall clock, monotonic): ``ttfb_s`` from the drill's start (before the repository is opened) to the
first restored byte on disk; ``restore_s`` the restore itself without the verification; ``throughput`` the bytes
restored per second of ``restore_s``; ``estimated_full_s`` the time to reach the restore (open, index, snapshot)
plus the asset's bytes at that throughput. The verdict fails on any error (a file not restored, a byte or an
attribute that differs) and on an estimate over the RTO.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sauvegarde.drill.sample import Sample, choose_sample
from sauvegarde.drill.scratch import scratch_dir
from sauvegarde.engine.find import SnapshotFilter, find_snapshot
from sauvegarde.engine.restore import Restore, RestoreOptions, RestoreSummary
from sauvegarde.engine.walk import TreeLoader, walk
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.state.db import DrillRecord

MAX_REASONS = 20  # errors named in the verdict; all are in ``errors``


@dataclass
class DrillResult:
    asset: str
    repository: str
    started: datetime
    snapshot_id: str
    snapshot_time: str
    sample: float
    seed: int
    files: int = 0  # files restored and verified
    bytes: int = 0
    asset_files: int = 0
    asset_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # the whole drill, cleanup included
    setup_s: float = 0.0  # open the repository and its index, find the snapshot, choose the sample
    restore_s: float = 0.0
    verify_s: float = 0.0
    ttfb_s: float | None = None
    throughput: float | None = None  # bytes per second
    estimated_full_s: float | None = None
    rto_s: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["started"] = self.started.isoformat()
        out["verdict"] = self.verdict
        return out

    def record(self) -> DrillRecord:
        return DrillRecord(
            self.asset,
            self.repository,
            self.started.timestamp(),
            self.seconds,
            self.bytes,
            self.files,
            self.verdict,
            "; ".join(self.reasons),
            self.snapshot_id,
            self.sample,
            len(self.errors),
            self.ttfb_s,
            self.throughput,
            self.asset_bytes,
            self.estimated_full_s,
            self.rto_s,
        )


def latest_snapshot(repo: Repository, tag: str) -> Snapshot:
    """The newest snapshot carrying ``tag`` (SnapshotNotFound when there is none)."""
    return find_snapshot(repo, "latest", SnapshotFilter(tags=[tag]))


def drill_snapshot(
    repo: Repository,
    snap: Snapshot,
    result: DrillResult,
    t0: float,
    scratch_root: str | None = None,
    restore_factory: Callable[[Repository, Snapshot, RestoreOptions], Restore] = Restore,
) -> DrillResult:
    """Restore and verify ``result.sample`` of ``snap`` into a scratch directory and fill in ``result``."""
    full = result.sample >= 1
    sample: Sample | None = None
    if not full:
        sample = choose_sample(walk(TreeLoader(repo), bytes.fromhex(snap.tree)), result.sample, result.seed)
        result.asset_files, result.asset_bytes = sample.total_files, sample.total_bytes
    with scratch_dir(scratch_root) as target:
        opts = RestoreOptions(target=target, only=sample.paths if sample else None, verify=True, verify_metadata=True)
        restore = restore_factory(repo, snap, opts)
        restore_start = time.monotonic()
        result.setup_s = round(restore_start - t0, 4)
        summary = restore.run()
    if full:
        result.asset_files, result.asset_bytes = restore.counters.total_files, restore.counters.total_bytes
    _measure(result, summary, restore_start - t0)
    return result


def _measure(result: DrillResult, summary: RestoreSummary, setup_s: float) -> None:
    result.files, result.bytes = summary.files, summary.bytes
    result.errors, result.warnings = list(summary.errors), list(summary.warnings)
    result.verify_s = summary.verify_s
    result.restore_s = round(max(summary.duration_s - summary.verify_s, 1e-6), 4)
    if summary.first_byte_s is not None:
        result.ttfb_s = round(setup_s + summary.first_byte_s, 4)
    if result.bytes > 0:
        result.throughput = round(result.bytes / result.restore_s, 1)
        # What comes before the first byte (walking the snapshot's trees, planning) is paid once whatever the
        # sample; the rest scales with the bytes restored.
        fixed = min(summary.first_byte_s or 0.0, result.restore_s)
        scaled = (result.restore_s - fixed) * result.asset_bytes / result.bytes
        result.estimated_full_s = round(setup_s + fixed + scaled, 3)
    elif result.asset_bytes == 0:
        result.estimated_full_s = round(setup_s + result.restore_s, 3)


def judge(result: DrillResult) -> None:
    """Fill in ``result.reasons``: every error (the first few by name), and an estimate over the RTO."""
    reasons = [f"{e['path']}: {e['error']}" for e in result.errors[:MAX_REASONS]]
    if len(result.errors) > MAX_REASONS:
        reasons.append(f"... and {len(result.errors) - MAX_REASONS} more error(s)")
    if result.files == 0 and result.asset_files > 0:
        reasons.append("no file was restored")
    if result.rto_s is not None:
        if result.estimated_full_s is None:
            reasons.append("the full restore time cannot be estimated (nothing was restored)")
        elif result.estimated_full_s > result.rto_s:
            reasons.append(
                f"estimated full restore {result.estimated_full_s:.0f}s exceeds the RTO of {result.rto_s:.0f}s"
            )
    result.reasons = reasons


def new_seed() -> int:
    return random.SystemRandom().randrange(2**32)
