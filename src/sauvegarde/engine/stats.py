"""Repository statistics: restore size, unique data, deduplication and compression ratios.

Each tree is read once however many snapshots share it: per-tree totals (files, bytes) are memoized, and unique
blobs are counted across all selected snapshots, so the cost grows with the stored data, not with history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sauvegarde.engine.referenced import BlobSet
from sauvegarde.errors import IntegrityError
from sauvegarde.repository import Repository, Snapshot, Tree
from sauvegarde.repository.tree import DIR, FILE


@dataclass
class SnapshotStats:
    id: str
    time: str
    files: int
    dirs: int
    restore_size: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Stats:
    snapshots: list[SnapshotStats] = field(default_factory=list)
    files: int = 0
    restore_size: int = 0  # bytes a restore of every selected snapshot would write
    unique_blobs: int = 0
    unique_size: int = 0  # plaintext bytes of the distinct file-content blobs referenced
    tree_size: int = 0  # plaintext bytes of the distinct directory listings (metadata)
    stored_size: int = 0  # bytes all those blobs take in packs (compressed and sealed)
    repository_size: int = 0  # every pack in storage, referenced or not

    @property
    def dedup_ratio(self) -> float:
        return self.restore_size / self.unique_size if self.unique_size else 0.0

    @property
    def compression_ratio(self) -> float:
        total = self.unique_size + self.tree_size
        return total / self.stored_size if self.stored_size else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "snapshots": [s.as_dict() for s in self.snapshots],
            "snapshots_count": len(self.snapshots),
            "files": self.files,
            "restore_size": self.restore_size,
            "unique_blobs": self.unique_blobs,
            "unique_size": self.unique_size,
            "tree_size": self.tree_size,
            "stored_size": self.stored_size,
            "repository_size": self.repository_size,
            "dedup_ratio": round(self.dedup_ratio, 4),
            "compression_ratio": round(self.compression_ratio, 4),
        }


class _Walker:
    """Walks trees once each; the blobs met go to two compact sets (engine/referenced.py: 40 bytes per blob, not
    the 100 of a Python set), whose sizes are looked up at the end, once per blob."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.totals: dict[bytes, tuple[int, int, int]] = {}  # tree -> (files, dirs, bytes)
        self.trees = BlobSet()
        self.data = BlobSet()
        self.unique_blobs = 0
        self.unique_size = 0
        self.tree_size = 0
        self.stored_size = 0

    def tree(self, tree_id: bytes) -> tuple[int, int, int]:
        known = self.totals.get(tree_id)
        if known is not None:
            return known
        tree = Tree.decode(self.repo.load_blob(tree_id), f"tree {tree_id.hex()}")
        self.trees.add(tree_id)
        files = dirs = size = 0
        for node in tree.nodes:
            if node.type == FILE:
                files += 1
                size += node.size
                self.data.add(b"".join(node.content))
            elif node.type == DIR:
                dirs += 1
                if node.subtree is not None:
                    f, d, s = self.tree(node.subtree)
                    files, dirs, size = files + f, dirs + d, size + s
        self.totals[tree_id] = (files, dirs, size)
        return files, dirs, size

    def sizes(self) -> None:
        """Sum the sizes of the blobs met, each once (a blob met as a tree and as data counts as a tree)."""
        trees, data = self.trees.sorted, self.data.sorted
        data = data[~self.trees.positions(data)[1]] if len(trees) else data
        self.unique_blobs = len(trees) + len(data)
        for ids, is_tree in ((trees, True), (data, False)):
            for i in range(0, len(ids), _LOOKUP_AT_ONCE):
                chunk = [v.tobytes() for v in ids[i : i + _LOOKUP_AT_ONCE]]
                for blob_id, hit in zip(chunk, self.repo.index.lookup_many(chunk), strict=True):
                    if hit is None:
                        raise IntegrityError(f"blob {blob_id.hex()} is not in the index (run `check`)")
                    entry = hit[1]
                    if is_tree:
                        self.tree_size += entry.plain_length
                    else:
                        self.unique_size += entry.plain_length
                    self.stored_size += entry.length


_LOOKUP_AT_ONCE = 1 << 16


def compute_stats(repo: Repository, snapshots: Sequence[Snapshot]) -> Stats:
    walker = _Walker(repo)
    stats = Stats()
    for snap in snapshots:
        files, dirs, size = walker.tree(bytes.fromhex(snap.tree))
        stats.snapshots.append(SnapshotStats(snap.id, snap.time, files, dirs, size))
        stats.files += files
        stats.restore_size += size
    walker.sizes()
    stats.unique_blobs = walker.unique_blobs
    stats.unique_size = walker.unique_size
    stats.tree_size = walker.tree_size
    stats.stored_size = walker.stored_size
    stats.repository_size = sum(repo.list_packs().values())
    return stats
