"""Snapshot selection: full ID, unique prefix or ``latest``, narrowed by host, path and tag filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sauvegarde.errors import SnapshotNotFound
from sauvegarde.repository import Repository, Snapshot


@dataclass(frozen=True)
class SnapshotFilter:
    hosts: Sequence[str] = ()
    paths: Sequence[str] = ()
    tags: Sequence[str] = ()  # each entry is a comma-separated set that must all be present; entries are OR-ed
    extra: dict[str, str] = field(default_factory=dict)

    def matches(self, snap: Snapshot) -> bool:
        if self.hosts and snap.hostname not in self.hosts:
            return False
        if self.paths and sorted(snap.paths) != sorted(self.paths):
            return False
        if self.tags:
            have = set(snap.tags)
            if not any(set(t.split(",")) <= have for t in self.tags):
                return False
        return True


def filter_snapshots(snaps: Sequence[Snapshot], flt: SnapshotFilter) -> list[Snapshot]:
    return [s for s in snaps if flt.matches(s)]


def find_snapshot(
    repo: Repository, selector: str, flt: SnapshotFilter | None = None, snaps: Sequence[Snapshot] | None = None
) -> Snapshot:
    """The one snapshot ``selector`` names among those matching ``flt``."""
    flt = flt or SnapshotFilter()
    if snaps is None:
        snaps = repo.snapshots()
    candidates = filter_snapshots(snaps, flt)
    if selector == "latest":
        if not candidates:
            raise SnapshotNotFound("no snapshot matches (latest)")
        return candidates[-1]
    sel = selector.lower()
    if not sel or any(c not in "0123456789abcdef" for c in sel):
        raise SnapshotNotFound(f"invalid snapshot ID {selector!r}")
    hits = [s for s in candidates if s.id.startswith(sel)]
    if not hits:
        raise SnapshotNotFound(f"no snapshot with ID {selector}")
    if len(hits) > 1:
        raise SnapshotNotFound(f"snapshot prefix {selector} is ambiguous ({len(hits)} matches)")
    return hits[0]
