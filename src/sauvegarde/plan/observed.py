"""What the compliance rules look at besides the plan: facts gathered from repositories, disks and the state database.

Plain data, no I/O: :mod:`sauvegarde.plan.observe` fills it from the real world, tests build it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SnapshotFact:
    """One snapshot of an asset in a repository. ``good``: saved without unreadable files."""

    time: datetime
    good: bool = True
    size: int = 0  # bytes processed by the backup (the asset's size then)


@dataclass(frozen=True)
class CheckFact:
    time: datetime
    errors: int


@dataclass(frozen=True)
class DrillFact:
    """One recorded restore drill. ``duration_s`` and ``bytes`` are what the drill restored (a sample or all);
    ``estimated_full_s`` its extrapolation to the whole asset (None for drills recorded without one)."""

    time: datetime
    repository: str
    duration_s: float
    bytes: int
    ok: bool
    errors: int = 0
    estimated_full_s: float | None = None
    ttfb_s: float | None = None
    throughput: float | None = None
    sample: float = 1.0
    reasons: str = ""


@dataclass
class RepositoryState:
    name: str
    reachable: bool = True
    error: str = ""  # why it could not be opened
    repo_id: str = ""
    immutable_days: int | None = None  # Object Lock retention configured in the repository
    snapshots: dict[str, list[SnapshotFact]] = field(default_factory=dict)  # per asset
    last_check: CheckFact | None = None
    last_upkeep: datetime | None = None  # start of the latest successful prune (it extends Object Lock retention)
    device: int | None = None  # st_dev of a local repository (its nearest existing directory)

    def good_snapshots(self, asset: str) -> list[SnapshotFact]:
        return sorted((s for s in self.snapshots.get(asset, []) if s.good), key=lambda s: s.time)

    def newest_good(self, asset: str) -> SnapshotFact | None:
        good = self.good_snapshots(asset)
        return good[-1] if good else None


@dataclass
class AssetState:
    name: str
    devices: dict[str, int] = field(default_factory=dict)  # st_dev of each path that exists
    last_backup_duration_s: float | None = None
    drills: list[DrillFact] = field(default_factory=list)


@dataclass
class Observation:
    now: datetime
    repositories: dict[str, RepositoryState] = field(default_factory=dict)
    assets: dict[str, AssetState] = field(default_factory=dict)

    def repository(self, name: str) -> RepositoryState:
        return self.repositories.get(name) or RepositoryState(name, reachable=False, error="not observed")

    def asset(self, name: str) -> AssetState:
        return self.assets.get(name) or AssetState(name)
