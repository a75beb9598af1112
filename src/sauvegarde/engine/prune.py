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
from typing import TYPE_CHECKING, Any

from sauvegarde.engine.referenced import BlobSet, PruneRefused, referenced_blobs
from sauvegarde.errors import IntegrityError, ObjectNotFound, SauvegardeError
from sauvegarde.repository import Repository, layout
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.packed_index import ENTRY, ROW
from sauvegarde.repository.packed_index import entries as packed_entries
from sauvegarde.storage.capabilities import ObjectLocked
from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")

__all__ = ["PrunePlan", "PruneRefused", "PruneResult", "execute_prune", "plan_prune", "referenced_blobs", "run_prune"]


# A temporary file (a pack being spooled or an object being saved) this old belongs to a process that died: prune
# holds the exclusive lock, so no backup is running, and no save takes an hour.
TEMPORARY_AGE_S = 3600


@dataclass
class PackUse:
    """One pack in the plan: its index entries (packed, see repository.packed_index) and which of them it keeps."""

    pack_id: bytes
    packed: bytes
    size: int  # bytes in storage
    kept: bytearray  # per entry, 1 for the copies kept (the first copy of each used blob)
    used_bytes: int = 0  # their length

    @property
    def entries(self) -> list[BlobEntry]:
        return packed_entries(self.packed)

    @property
    def used(self) -> list[BlobEntry]:
        """The copies kept, in the pack's order (unpacked on each call: only packs to repack ask)."""
        return [e for e, k in zip(self.entries, self.kept, strict=True) if k]

    @property
    def unused_bytes(self) -> int:
        return max(0, self.size - self.used_bytes)

    def keep_row(self, row: int, keep: bool) -> None:
        """Keep (or not) the copy at ``row`` of the pack's entries."""
        if bool(self.kept[row]) != keep:
            self.kept[row] = keep
            length = ENTRY.unpack_from(self.packed, row * ENTRY.size)[3]
            self.used_bytes += length if keep else -length


@dataclass
class Duplicate:
    """A used blob stored more than once: the copy the plan keeps, and the packs whose copies go away with them
    (removed, or repacked without it). Prune reads the kept copy before deleting anything; the plan alone cannot
    tell a damaged copy from a good one, and deleting the only good copy would lose the blob."""

    pack_id: bytes
    entry: BlobEntry
    others: list[bytes]
    row: int = 0  # the kept copy's place among its pack's entries


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


def plan_prune(
    packs: dict[bytes, bytes],
    stored: dict[bytes, int],
    used: BlobSet,
    max_unused: float = 0.05,
    old_indexes: list[bytes] | None = None,
) -> PrunePlan:
    """Decide which packs to keep, repack and remove.

    ``packs``: the index (pack -> its entries, packed); ``stored``: packs in storage and their sizes; ``used``:
    referenced blob IDs; ``max_unused``: tolerated unused bytes, as a fraction of the used bytes.

    Every entry is looked up in ``used`` at once, in columns (ID, length, pack number); only the entries of blobs
    held more than once are then visited one by one. Each used blob is given to the most used pack holding it
    (by the share of its bytes that are used; ties by pack ID), so that duplicates land in packs that go away.
    """
    plan = PrunePlan(old_indexes=list(old_indexes or []))
    plan.unindexed = {p: n for p, n in stored.items() if p not in packs}
    pids = [pid for pid in packs if pid in stored]
    counts = np.array([len(packs[p]) // ENTRY.size for p in pids], np.int64)
    starts = np.zeros(len(pids) + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    pos, found, lengths = _look_up(packs, pids, int(starts[-1]), used)
    pack_no = np.repeat(np.arange(len(pids), dtype=np.int32), counts)
    sizes = [stored[p] for p in pids]
    # (bincount sums in float64, exact for whole numbers below 2**53: the same figures as summing Python ints)
    potential = (np.bincount(pack_no, lengths * found, len(pids)) / np.maximum(sizes, 1)).tolist()
    order = sorted(range(len(pids)), key=lambda k: (-potential[k], pids[k]))
    copies_of = np.bincount(pos[found], minlength=len(used))
    if not copies_of.all():
        lost = np.flatnonzero(copies_of == 0)
        raise PruneRefused(
            f"{len(lost)} referenced blob(s) (such as {used.sorted[lost[0]].tobytes().hex()}) are only in packs "
            "missing from storage; run `check` and `repair` before pruning"
        )
    kept = found.copy()
    held_twice = np.zeros(len(kept), bool)
    held_twice[found] = copies_of[pos[found]] > 1
    winners, copies = _give_duplicates(pos, held_twice, pack_no, order, pids, kept)
    del pos, found, copies_of, held_twice
    used_bytes = np.bincount(pack_no, lengths * kept, len(pids)).tolist()
    used_rows = np.bincount(pack_no[kept], minlength=len(pids)).tolist()
    plan.blobs_used = len(used)
    plan.blobs_unused = int(starts[-1]) - int(kept.sum())
    flags = kept.view(np.uint8)
    uses: list[PackUse] = []
    partial: list[PackUse] = []
    for k in order:
        u = PackUse(pids[k], packs[pids[k]], sizes[k], bytearray(flags[starts[k] : starts[k + 1]]), int(used_bytes[k]))
        uses.append(u)
        if not used_rows[k]:
            plan.remove.append(u)
        elif used_rows[k] == int(counts[k]):
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
        plan.duplicates = _duplicates(plan, winners, copies, pids, pack_no, starts)
    return plan


_LOOKUP_ROWS = 1 << 16  # entries whose IDs are gathered for one search in the used set


def _look_up(
    packs: dict[bytes, bytes], pids: list[bytes], total: int, used: BlobSet
) -> tuple[npt.NDArray[np.integer[Any]], npt.NDArray[np.bool_], npt.NDArray[np.uint32]]:
    """For every entry of the packs ``pids``, in order: its ID's place in ``used``, whether it is there, and its
    length. IDs are gathered a few packs at a time, so the columns take 13 bytes per entry."""
    pos: npt.NDArray[np.integer[Any]] = np.empty(total, np.int32 if len(used) < 2**31 else np.int64)
    found: npt.NDArray[np.bool_] = np.empty(total, bool)
    lengths = np.empty(total, np.uint32)
    batch: list[npt.NDArray[np.void]] = []
    at = gathered = 0

    def search() -> None:
        nonlocal at, gathered
        p, f = used.positions(np.concatenate(batch))
        pos[at : at + gathered], found[at : at + gathered] = p, f
        at += gathered
        batch.clear()
        gathered = 0

    for pid in pids:
        rows = np.frombuffer(packs[pid], ROW)
        lengths[at + gathered : at + gathered + len(rows)] = rows["length"]
        batch.append(rows["id"])
        gathered += len(rows)
        if gathered >= _LOOKUP_ROWS:
            search()
    if batch:
        search()
    return pos, found, lengths


def _give_duplicates(
    pos: npt.NDArray[np.integer[Any]],
    dup: npt.NDArray[np.bool_],
    pack_no: npt.NDArray[np.integer[Any]],
    order: list[int],
    pids: list[bytes],
    kept: npt.NDArray[np.bool_],
) -> tuple[dict[int, int], dict[int, list[bytes]]]:
    """Of the entries ``dup`` (copies of used blobs held more than once), keep the first in the packs' ``order``
    (then the pack's own order) and clear ``kept`` for the others. Returns, by the blob's place in the used set,
    the entry kept and the packs of the copies not kept (a pack listing the blob twice counts its second copy)."""
    rows = np.flatnonzero(dup)
    if not len(rows):
        return {}, {}
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rows = rows[np.lexsort((rows, rank[pack_no[rows]]))]
    winners: dict[int, int] = {}
    copies: dict[int, list[bytes]] = {}
    for row, blob in zip(rows.tolist(), pos[rows].tolist(), strict=True):
        if blob not in winners:
            winners[blob] = row
        else:
            kept[row] = False
            copies.setdefault(blob, []).append(pids[pack_no[row]])
    return winners, copies


def _duplicates(
    plan: PrunePlan,
    winners: dict[int, int],
    copies: dict[int, list[bytes]],
    pids: list[bytes],
    pack_no: npt.NDArray[np.integer[Any]],
    starts: npt.NDArray[np.int64],
) -> list[Duplicate]:
    """The used blobs with copies not kept whose copies the plan drops: a kept pack keeps every copy in it (the new
    index names all its entries), a removed or repacked one does not. In the order of the packs keeping them."""
    going = {u.pack_id for u in (*plan.remove, *plan.repack)}
    holders = {u.pack_id: (i, u) for i, u in enumerate((*plan.keep, *plan.repack))}
    out: list[tuple[int, int, Duplicate]] = []
    for blob, packs in copies.items():
        others = [p for p in packs if p in going]
        if not others:
            continue
        row = winners[blob]
        k = int(pack_no[row])
        place, holder = holders[pids[k]]
        at = row - int(starts[k])
        entry = BlobEntry._make(ENTRY.unpack_from(holder.packed, at * ENTRY.size))
        out.append((place, at, Duplicate(holder.pack_id, entry, others, at)))
    out.sort(key=lambda t: (t[0], t[1]))
    return [d for _, _, d in out]


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
    final: dict[bytes, list[BlobEntry] | bytes] = {u.pack_id: u.packed for u in plan.keep}
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
            holder.keep_row(d.row, False)  # never carried into a new pack
        for pid in d.others:
            other = uses[pid]
            if _take(plan.remove, other) or _take(plan.repack, other):
                for row, e in enumerate(other.entries):
                    if e.id == d.entry.id:
                        other.keep_row(row, True)
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
    say("finding data referenced by snapshots")
    # walked before the packed index is loaded, so that the set's merges and the index do not make a peak together
    try:
        used: BlobSet | PruneRefused = referenced_blobs(repo)
    except PruneRefused as exc:
        used = exc  # a damaged index object is the first thing to report, as it may be the cause
    files, errors = repo.load_packed_index_files()
    if errors:
        first = next(iter(errors.items()))
        raise PruneRefused(f"index {first[0].hex()} cannot be read ({first[1]}); run `repair index` before pruning")
    if isinstance(used, PruneRefused):
        raise used
    packs: dict[bytes, bytes] = {}
    for f in files:
        for pid, packed in f.packs.items():
            packs.setdefault(pid, packed)
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
