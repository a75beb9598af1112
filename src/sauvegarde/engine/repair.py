"""Repairs: rebuild the index from pack headers, and save readable copies of snapshots that lost data.

``repair index`` reads the header of every pack (never the blobs) and writes index objects naming every pack
that has a readable header; the last one supersedes all earlier index objects, which are then deleted, so an
interruption leaves either the old index or the new one in force.

``repair snapshots`` finds lost blobs with the same checks as ``check`` (optionally reading the data), then for
each snapshot that refers to lost data saves a new snapshot without the files and directories it can no longer
restore; the new snapshot records what was removed and which snapshot it repairs, and carries the tag
``repaired``. The damaged original is kept unless the caller forgets it.
"""

from __future__ import annotations

import copy as copy_module
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sauvegarde.engine.check import Checker, ReadSubset
from sauvegarde.errors import ObjectNotFound, SauvegardeError
from sauvegarde.repository import Repository, Snapshot, Tree
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.snapshot import format_time
from sauvegarde.repository.tree import DIR, FILE

REPAIRED_TAG = "repaired"
MAX_LISTED = 1000


@dataclass
class IndexRepair:
    packs_indexed: int = 0
    packs_unreadable: dict[str, str] = field(default_factory=dict)  # pack hex ID -> error
    blobs: int = 0
    indexes_written: int = 0
    indexes_deleted: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "packs_indexed": self.packs_indexed,
            "packs_unreadable": self.packs_unreadable,
            "blobs": self.blobs,
            "indexes_written": self.indexes_written,
            "indexes_deleted": self.indexes_deleted,
        }


def repair_index(repo: Repository, dry_run: bool = False) -> IndexRepair:
    """Rebuild the whole index from the packs in storage. Needs an exclusive lock."""
    result = IndexRepair()
    stored = repo.list_packs()
    old = repo.list_index_ids()

    def header(item: tuple[bytes, int]) -> tuple[bytes, list[BlobEntry] | None, str]:
        pid, size = item
        try:
            return pid, repo.read_pack_header(pid, size), ""
        except SauvegardeError as exc:
            return pid, None, str(exc)

    packs: dict[bytes, list[BlobEntry]] = {}
    with ThreadPoolExecutor(8) as pool:
        for pid, entries, error in pool.map(header, sorted(stored.items())):
            if entries is None:
                result.packs_unreadable[pid.hex()] = error
            else:
                packs[pid] = entries
    result.packs_indexed = len(packs)
    result.blobs = sum(len(e) for e in packs.values())
    if dry_run:
        return result
    result.indexes_written = len(repo.write_index(packs, old))
    for index_id in old:
        try:
            repo.delete_index(index_id)
        except ObjectNotFound:
            continue
        result.indexes_deleted += 1
    return result


@dataclass
class SnapshotRepair:
    snapshot: str
    new_snapshot: str = ""  # empty when nothing needed repair, or in a dry run
    removed: list[str] = field(default_factory=list)
    removed_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "snapshot": self.snapshot,
            "new_snapshot": self.new_snapshot,
            "removed": self.removed,
            "removed_count": self.removed_count,
        }


class _Rewriter:
    def __init__(self, repo: Repository, checker: Checker, dry_run: bool) -> None:
        self.repo = repo
        self.checker = checker
        self.dry_run = dry_run
        self._memo: dict[bytes, tuple[bytes, list[bytes]]] = {}

    def rewrite(self, tree_id: bytes, prefix: bytes) -> tuple[bytes | None, list[bytes]]:
        """New ID of the tree without lost entries (``None`` if the tree itself is lost), and removed paths."""
        if self.checker.lost(tree_id):
            return None, [prefix or b"/"]
        memo = self._memo.get(tree_id)
        if memo is not None:
            new_id, removed_rel = memo
            return new_id, [prefix + r for r in removed_rel]
        try:
            tree = Tree.decode(self.repo.load_blob(tree_id), f"tree {tree_id.hex()}")
        except SauvegardeError:
            return None, [prefix or b"/"]
        removed: list[bytes] = []
        kept = []
        for node in tree.nodes:
            path = prefix + b"/" + node.name
            if node.type == FILE and any(self.checker.lost(b) for b in node.content):
                removed.append(path)
                continue
            if node.type == DIR and node.subtree is not None:
                new_sub, sub_removed = self.rewrite(node.subtree, path)
                removed.extend(sub_removed)
                if new_sub is None:
                    continue
                if new_sub != node.subtree:
                    node = copy_module.copy(node)
                    node.subtree = new_sub
            kept.append(node)
        if not removed:
            new_id = tree_id
        elif self.dry_run:
            new_id = tree_id[:31] + bytes([tree_id[31] ^ 1])  # any different ID: nothing is saved
        else:
            new_id, _ = self.repo.save_blob(BlobType.TREE, Tree(kept).encode())
        self._memo[tree_id] = (new_id, [r[len(prefix) :] for r in removed])
        return new_id, removed


def repair_snapshots(
    repo: Repository,
    snapshots: list[Snapshot],
    read: ReadSubset | None = None,
    dry_run: bool = False,
    forget: bool = False,
) -> list[SnapshotRepair]:
    """Save repaired copies of ``snapshots`` that refer to lost data. The repository must be opened without its
    index (the check loads it) and locked: shared, or exclusive with ``forget``."""
    checker = Checker(repo, read, build_index=True)  # the copies are written through the index
    checker.run()
    rewriter = _Rewriter(repo, checker, dry_run)
    results = []
    pending: list[tuple[Snapshot, SnapshotRepair]] = []
    for snap in snapshots:
        res = SnapshotRepair(snap.id)
        new_root, removed = rewriter.rewrite(bytes.fromhex(snap.tree), b"")
        results.append(res)
        if not removed:
            continue
        res.removed_count = len(removed)
        res.removed = [p.decode(errors="surrogateescape") for p in removed[:MAX_LISTED]]
        if new_root is None:
            res.removed = ["/ (the root directory listing is lost; nothing can be saved)"]
            continue
        if dry_run:
            continue
        fixed = copy_module.deepcopy(snap)
        fixed.tree = new_root.hex()
        fixed.parent = snap.id
        if REPAIRED_TAG not in fixed.tags:
            fixed.tags = [*fixed.tags, REPAIRED_TAG]
        fixed.extra = {
            **fixed.extra,
            "repaired": {
                "from": snap.id,
                "time": format_time(time.time_ns(), _local_tz()),
                "removed_count": res.removed_count,
                "removed": res.removed,
            },
        }
        pending.append((fixed, res))
    if pending:
        repo.flush()  # new trees are stored and indexed before any snapshot names them
        for fixed, res in pending:
            res.new_snapshot = repo.save_snapshot(fixed)
            if forget:
                repo.delete_snapshot(res.snapshot)
    return results


def _local_tz() -> datetime:
    return datetime.now().astimezone()
