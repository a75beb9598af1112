"""Prune: remove data no snapshot references, repacking packs that are mostly unused.

A pure planner (:func:`plan_prune`) decides from the index and the set of referenced blobs; an executor
(:func:`execute_prune`) carries the plan out in an order that keeps the repository valid at every step:

0. read back the kept copy of every used blob whose other copies go away (see :class:`Duplicate`): a damaged one
   keeps the packs holding the other copies instead, with a warning;
1. copy the still-used blobs of the packs to repack into new packs, and index those (``flush``);
2. write index objects naming every pack that stays, the last one superseding all the old index objects;
3. delete the old index objects;
4. delete the packs nobody needs any more.

Killed before step 2 ends, the old index is still in force and the new packs are harmless duplicates. Killed later,
the remaining old index objects are superseded and ignored, and packs not yet deleted are named by no index: the
next prune deletes them. Prune holds an exclusive lock, so no backup can be adding references to data it removes;
a backup whose lock lapsed refuses to save its snapshot (see docs/format.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sauvegarde.errors import IntegrityError, ObjectNotFound, SauvegardeError
from sauvegarde.repository import Repository, Tree, layout
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.tree import DIR, FILE
from sauvegarde.storage.capabilities import ObjectLocked

# A temporary file (a pack being spooled or an object being saved) this old belongs to a process that died: prune
# holds the exclusive lock, so no backup is running, and no save takes an hour.
TEMPORARY_AGE_S = 3600


class PruneRefused(SauvegardeError):
    """The repository is damaged in a way that makes pruning unsafe."""


@dataclass
class PackUse:
    pack_id: bytes
    entries: list[BlobEntry]
    size: int  # bytes in storage
    used: list[BlobEntry] = field(default_factory=list)  # the copies kept (first copy of each used blob)

    @property
    def used_bytes(self) -> int:
        return sum(e.length for e in self.used)

    @property
    def unused_bytes(self) -> int:
        return max(0, self.size - self.used_bytes)


@dataclass
class Duplicate:
    """A used blob stored more than once: the copy the plan keeps, and the packs whose copies go away with them
    (removed, or repacked without it). Prune reads the kept copy before deleting anything; the plan alone cannot
    tell a damaged copy from a good one, and deleting the only good copy would lose the blob."""

    pack_id: bytes
    entry: BlobEntry
    others: list[bytes]


@dataclass
class PrunePlan:
    keep: list[PackUse] = field(default_factory=list)
    repack: list[PackUse] = field(default_factory=list)
    remove: list[PackUse] = field(default_factory=list)
    unindexed: dict[bytes, int] = field(default_factory=dict)  # packs in storage named by no index
    old_indexes: list[bytes] = field(default_factory=list)
    blobs_used: int = 0
    blobs_unused: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)  # used blobs whose other copies go away

    @property
    def bytes_removed(self) -> int:
        return sum(p.size for p in self.remove) + sum(self.unindexed.values())

    @property
    def bytes_repacked(self) -> int:
        return sum(p.used_bytes for p in self.repack)

    @property
    def bytes_unused_after(self) -> int:
        return sum(p.unused_bytes for p in self.keep)

    @property
    def bytes_total(self) -> int:
        return sum(p.size for p in (*self.keep, *self.repack, *self.remove)) + sum(self.unindexed.values())

    @property
    def bytes_freed(self) -> int:
        return self.bytes_removed + sum(p.unused_bytes for p in self.repack)

    def as_dict(self) -> dict[str, object]:
        return {
            "packs_kept": len(self.keep),
            "packs_repacked": len(self.repack),
            "packs_removed": len(self.remove) + len(self.unindexed),
            "packs_unindexed_removed": len(self.unindexed),
            "blobs_used": self.blobs_used,
            "blobs_unused": self.blobs_unused,
            "bytes_total": self.bytes_total,
            "bytes_repacked": self.bytes_repacked,
            "bytes_freed": self.bytes_freed,
            "bytes_unused_after": self.bytes_unused_after,
        }


def referenced_blobs(repo: Repository) -> set[bytes]:
    """IDs of every tree and data blob reachable from a snapshot; refuses if any is unreadable or unindexed."""
    used: set[bytes] = set()
    for snap in repo.snapshots():
        stack = [bytes.fromhex(snap.tree)]
        while stack:
            tree_id = stack.pop()
            if tree_id in used:
                continue
            try:
                tree = Tree.decode(repo.load_blob(tree_id), f"tree {tree_id.hex()}")
            except SauvegardeError as exc:
                raise PruneRefused(
                    f"snapshot {snap.short_id}: {exc}; run `check` and `repair` before pruning"
                ) from None
            used.add(tree_id)
            for node in tree.nodes:
                if node.type == FILE:
                    for blob_id in node.content:
                        if blob_id not in used:
                            if blob_id not in repo.index:
                                raise PruneRefused(
                                    f"snapshot {snap.short_id} refers to blob {blob_id.hex()} which is in no index; "
                                    "run `check` and `repair` before pruning"
                                )
                            used.add(blob_id)
                elif node.type == DIR and node.subtree is not None:
                    stack.append(node.subtree)
    return used


def plan_prune(
    packs: dict[bytes, list[BlobEntry]],
    stored: dict[bytes, int],
    used: set[bytes],
    max_unused: float = 0.05,
    old_indexes: list[bytes] | None = None,
) -> PrunePlan:
    """Decide which packs to keep, repack and remove.

    ``packs``: the index (pack -> entries); ``stored``: packs in storage and their sizes; ``used``: referenced blob
    IDs (all present in ``packs``); ``max_unused``: tolerated unused bytes, as a fraction of the used bytes.
    """
    plan = PrunePlan(old_indexes=list(old_indexes or []))
    plan.unindexed = {p: n for p, n in stored.items() if p not in packs}
    uses = [PackUse(pid, entries, stored[pid]) for pid, entries in packs.items() if pid in stored]
    # Give each used blob to the pack that is most used, so duplicates land in packs that go away.
    potential = {u.pack_id: sum(e.length for e in u.entries if e.id in used) / max(u.size, 1) for u in uses}
    uses.sort(key=lambda u: (-potential[u.pack_id], u.pack_id))
    assigned: set[bytes] = set()
    copies: dict[bytes, list[bytes]] = {}  # used blob -> the packs holding copies not kept
    unused_blobs = 0
    for u in uses:
        for e in u.entries:
            if e.id in used and e.id not in assigned:
                assigned.add(e.id)
                u.used.append(e)
            else:
                unused_blobs += 1
                if e.id in used:
                    copies.setdefault(e.id, []).append(u.pack_id)
    lost = used - assigned
    if lost:
        raise PruneRefused(
            f"{len(lost)} referenced blob(s) (such as {min(lost).hex()}) are only in packs missing from storage; "
            "run `check` and `repair` before pruning"
        )
    plan.blobs_used = len(assigned)
    plan.blobs_unused = unused_blobs
    partial: list[PackUse] = []
    for u in uses:
        if not u.used:
            plan.remove.append(u)
        elif len(u.used) == len(u.entries):
            plan.keep.append(u)
        else:
            partial.append(u)
    limit = max_unused * sum(u.used_bytes for u in uses)
    unused = sum(u.unused_bytes for u in partial)
    partial.sort(key=lambda u: (-u.unused_bytes / max(u.size, 1), u.pack_id))
    for u in partial:
        if unused > limit:
            plan.repack.append(u)
            unused -= u.unused_bytes
        else:
            plan.keep.append(u)
    if copies:
        plan.duplicates = _duplicates(plan, copies)
    return plan


def _duplicates(plan: PrunePlan, copies: dict[bytes, list[bytes]]) -> list[Duplicate]:
    """The used blobs of ``copies`` (blob -> packs with copies not kept) whose other copies the plan drops: a kept
    pack keeps every copy in it (the new index names all its entries), a removed or repacked one does not."""
    going = {u.pack_id for u in (*plan.remove, *plan.repack)}
    out: list[Duplicate] = []
    for u in (*plan.keep, *plan.repack):
        for e in u.used:
            others = [p for p in copies.get(e.id, ()) if p in going]
            if others:
                out.append(Duplicate(u.pack_id, e, others))
    return out


@dataclass
class PruneResult:
    plan: PrunePlan
    packs_written: int = 0
    indexes_written: int = 0
    indexes_deleted: int = 0
    packs_deleted: int = 0
    retention: object | None = None  # a RetentionReport, on immutable repositories (engine/retention_lock.py)
    # temporary files of killed processes, older than TEMPORARY_AGE_S, removed (or, in a dry run, found)
    temporaries: int = 0
    temporary_bytes: int = 0
    warnings: list[str] = field(default_factory=list)  # damaged copies found, and what was kept instead


def execute_prune(repo: Repository, plan: PrunePlan, progress: Callable[[str], None] | None = None) -> PruneResult:
    """Carry out ``plan`` (see the module docstring for the order and why it is safe)."""
    say = progress or (lambda _msg: None)
    result = PruneResult(plan)
    if plan.duplicates:
        say(f"reading the kept copy of {len(plan.duplicates)} blob(s) stored more than once")
        result.warnings = _verify_duplicates(repo, plan)
    before = set(repo.list_index_ids())
    if plan.repack:
        say(f"repacking {len(plan.repack)} pack(s)")
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda u: _repack_one(repo, u), plan.repack))
        repo.flush()
    new_packs, flushed = _new_packs(repo, before)
    result.packs_written = len(new_packs)
    final: dict[bytes, list[BlobEntry]] = {u.pack_id: u.entries for u in plan.keep}
    final.update(new_packs)
    doomed = [u.pack_id for u in (*plan.remove, *plan.repack)] + list(plan.unindexed)
    supersede = sorted(before | set(plan.old_indexes) | flushed)
    # one deletion log for everything below (written only on versioned storage; see repository/deletions.py)
    repo.announce_deletions([layout.named(layout.INDEX, i) for i in supersede] + [layout.pack_name(p) for p in doomed])
    if plan.repack or plan.remove or plan.unindexed or len(before) > 1:
        say("writing the new index")
        written = repo.write_index(final, supersede)
        result.indexes_written = len(written)
        for index_id in supersede:
            _delete(repo.delete_index, index_id)
            result.indexes_deleted += 1
    if doomed:
        say(f"deleting {len(doomed)} pack(s)")
    for pid in doomed:
        _delete(repo.delete_pack, pid)
        result.packs_deleted += 1
    return result


def _verify_duplicates(repo: Repository, plan: PrunePlan) -> list[str]:
    """Read and authenticate the kept copy of each of ``plan.duplicates``; for each damaged one, keep whole the
    packs holding its other copies (moved to ``plan.keep``) and leave it out of any repack. One warning per damaged
    copy. Runs before anything is written or deleted."""
    warnings: list[str] = []
    uses = {u.pack_id: u for u in (*plan.keep, *plan.repack, *plan.remove)}
    for d in plan.duplicates:
        try:
            repo.decode_blob(d.entry, repo.load_pack_range(d.pack_id, d.entry.offset, d.entry.length))
            continue
        except SauvegardeError as exc:
            problem = str(exc)
        holder = uses[d.pack_id]
        if any(u is holder for u in plan.repack):
            holder.used = [e for e in holder.used if e is not d.entry]  # never carried into a new pack
        for pid in d.others:
            other = uses[pid]
            if _take(plan.remove, other) or _take(plan.repack, other):
                other.used = [e for e in other.entries if e.id == d.entry.id] + other.used
                plan.keep.append(other)
        warnings.append(
            f"blob {d.entry.id.hex()}: its copy in pack {d.pack_id.hex()} is damaged ({problem}); kept pack(s) "
            f"{', '.join(p.hex() for p in d.others)} with its other copies; run `check --read-data`"
        )
    return warnings


def _take(group: list[PackUse], use: PackUse) -> bool:
    """Take ``use`` (that very object) out of ``group``; whether it was there."""
    for i, u in enumerate(group):
        if u is use:
            del group[i]
            return True
    return False


def _repack_one(repo: Repository, use: PackUse) -> None:
    data = memoryview(repo.load_pack(use.pack_id, verify=False))
    for e in use.used:
        sealed = bytes(data[e.offset : e.offset + e.length])
        try:
            repo.decode_blob(e, sealed)  # never carry damaged data into a new pack
        except SauvegardeError as exc:
            raise IntegrityError(f"cannot repack pack {use.pack_id.hex()}: {exc}; run `check --read-data`") from None
        repo.save_sealed_blob(e, sealed)


def _new_packs(repo: Repository, old_indexes: set[bytes]) -> tuple[dict[bytes, list[BlobEntry]], set[bytes]]:
    """Packs named by index objects written since ``old_indexes`` were listed (the repacked data), and those."""
    out: dict[bytes, list[BlobEntry]] = {}
    new = set(repo.list_index_ids()) - old_indexes
    for index_id in new:
        out.update(repo.load_index_file(index_id).packs)
    return out, new


def _delete(action: Callable[[bytes], None], object_id: bytes) -> None:
    # already gone: an earlier, interrupted prune got there; locked: retention still runs, purged later
    with contextlib.suppress(ObjectNotFound, ObjectLocked):
        action(object_id)


def run_prune(
    repo: Repository, max_unused: float = 0.05, dry_run: bool = False, progress: Callable[[str], None] | None = None
) -> PruneResult:
    """Plan and (unless ``dry_run``) execute a prune. The repository must be open, exclusively locked."""
    say = progress or (lambda _msg: None)
    files, errors = repo.load_index_files()
    if errors:
        first = next(iter(errors.items()))
        raise PruneRefused(f"index {first[0].hex()} cannot be read ({first[1]}); run `repair index` before pruning")
    packs: dict[bytes, list[BlobEntry]] = {}
    for f in files:
        for pid, entries in f.packs.items():
            packs.setdefault(pid, entries)
    say("finding data referenced by snapshots")
    used = referenced_blobs(repo)
    plan = plan_prune(packs, repo.list_packs(), used, max_unused, [f.index_id for f in files])
    if dry_run:
        result = PruneResult(plan)
        result.temporaries, result.temporary_bytes = repo.remove_stale_temporaries(TEMPORARY_AGE_S, dry_run=True)
        return result
    result = execute_prune(repo, plan, say)
    result.temporaries, result.temporary_bytes = repo.remove_stale_temporaries(TEMPORARY_AGE_S)
    if repo.config.immutability is not None:
        from sauvegarde.engine.retention_lock import maintain

        say("extending retention and purging expired versions")
        result.retention = maintain(repo, used)
    return result
