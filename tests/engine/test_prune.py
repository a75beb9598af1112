"""prune: frees what no snapshot references, keeps everything else readable, and survives being killed anywhere."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauvegarde.engine.check import ReadSubset, check_repository
from sauvegarde.engine.prune import PrunePlan, PruneRefused, plan_prune, referenced_blobs, run_prune
from sauvegarde.engine.referenced import BlobSet
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.errors import RepositoryLocked, StorageError
from sauvegarde.repository import Repository, Snapshot, Tree, layout
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.locks import STALE_AFTER
from sauvegarde.repository.packed_index import pack_rows
from sauvegarde.repository.testing import PASSWORD
from sauvegarde.repository.tree import DIR
from sauvegarde.storage.base import Buffer, ObjectInfo
from sauvegarde.storage.memory import MemoryStorage

from .repo_helpers import backup, make_files, memory_objects, memory_repository, pack_names, reopen


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def restore_digest(repo: Repository, snap: Snapshot, target: Path, source: Path) -> dict[str, str]:
    summary = Restore(repo, snap, RestoreOptions(target=str(target), workers=2)).run()
    assert not summary.errors
    return digest_tree(target / str(source).lstrip("/"))


@pytest.fixture
def two_snapshots(tmp_path: Path) -> tuple[Repository, Snapshot, Snapshot, Path, Path]:
    """Snapshot A of a tree; snapshot B of the same tree with half its files replaced."""
    repo = memory_repository()
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    make_files(a_dir, seed=1, count=10)
    snap_a = backup(repo, a_dir)
    make_files(b_dir, seed=1, count=10)
    for i, p in enumerate(sorted(b_dir.rglob("*.bin"))):
        if i % 2:
            p.write_bytes(bytes([i]) * 5000 + p.read_bytes()[:10_000])
    snap_b = backup(repo, b_dir)
    return repo, snap_a, snap_b, a_dir, b_dir


def stored_bytes(repo: Repository) -> int:
    return sum(len(v) for n, v in memory_objects(repo).items() if n.startswith(layout.DATA))


def test_prune_after_forget_frees_space_and_keeps_the_rest(two_snapshots, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, snap_a, snap_b, _, b_dir = two_snapshots
    repo.delete_snapshot(snap_a.id)
    before = stored_bytes(repo)
    result = run_prune(reopen(repo), max_unused=0.0)
    assert result.packs_deleted > 0
    assert stored_bytes(repo) < before
    fresh = reopen(repo)
    report = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert report.errors == [] and report.unused_blobs == 0
    assert not [p for p in report.problems if p.kind == "pack_unindexed"]
    assert report.duplicate_blobs == 0
    assert restore_digest(fresh, snap_b, tmp_path / "out", b_dir) == digest_tree(b_dir)
    assert len([n for n in memory_objects(repo) if n.startswith(layout.INDEX)]) == 1


def test_nothing_to_do_changes_nothing(two_snapshots) -> None:  # type: ignore[no-untyped-def]
    repo, *_ = two_snapshots
    before = dict(memory_objects(repo))
    result = run_prune(reopen(repo))
    assert not result.plan.remove and not result.plan.repack
    assert {n for n in memory_objects(repo) if not n.startswith(layout.INDEX)} == {
        n for n in before if not n.startswith(layout.INDEX)
    }


def test_dry_run_changes_nothing(two_snapshots) -> None:  # type: ignore[no-untyped-def]
    repo, snap_a, *_ = two_snapshots
    repo.delete_snapshot(snap_a.id)
    before = dict(memory_objects(repo))
    result = run_prune(reopen(repo), max_unused=0.0, dry_run=True)
    assert result.plan.remove or result.plan.repack
    assert memory_objects(repo) == before


def test_everything_forgotten_leaves_an_empty_repository(two_snapshots) -> None:  # type: ignore[no-untyped-def]
    repo, snap_a, snap_b, *_ = two_snapshots
    repo.delete_snapshot(snap_a.id)
    repo.delete_snapshot(snap_b.id)
    run_prune(reopen(repo))
    assert pack_names(repo) == []
    assert check_repository(reopen(repo, load_index=False)).problems == []


def test_prune_refuses_when_referenced_data_is_missing(two_snapshots) -> None:  # type: ignore[no-untyped-def]
    repo, snap_a, *_ = two_snapshots
    repo.delete_snapshot(snap_a.id)
    r = reopen(repo)
    still_used = referenced_blobs(r)
    # a data pack holding blobs the remaining snapshot needs
    data_pack = next(pid for pid, e in r.index.entries() if e.type == 0 and e.id in still_used)
    del memory_objects(repo)[layout.pack_name(data_pack)]
    before = dict(memory_objects(repo))
    with pytest.raises(PruneRefused):
        run_prune(reopen(repo))
    assert memory_objects(repo) == before


class CrashingStorage(MemoryStorage):
    """Memory storage sharing another's objects that dies (raises) at the N-th save or delete."""

    def __init__(self, inner: MemoryStorage, crash_at: int) -> None:
        super().__init__(inner.location)
        self.objects = inner.objects
        self._created = True
        self.crash_at = crash_at
        self.ops = 0

    def _tick(self) -> None:
        self.ops += 1
        if self.ops == self.crash_at:
            raise StorageError("injected crash")

    def save(self, name: str, data: Buffer) -> None:
        if not name.startswith(layout.LOCKS):
            self._tick()
        super().save(name, data)

    def delete(self, name: str) -> None:
        if not name.startswith(layout.LOCKS):
            self._tick()
        super().delete(name)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return super().list(prefix)


def test_prune_killed_at_every_step_leaves_a_valid_repository(two_snapshots, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, snap_a, snap_b, _, b_dir = two_snapshots
    repo.delete_snapshot(snap_a.id)
    inner = repo.storage
    assert isinstance(inner, MemoryStorage)
    pristine = dict(inner.objects)
    # count the mutating operations of an uninterrupted prune
    counting = CrashingStorage(MemoryStorage(), crash_at=-1)
    counting.objects = dict(pristine)
    run_prune(Repository.open(counting, PASSWORD), max_unused=0.0)
    total = counting.ops
    assert total > 3
    for crash_at in range(1, total + 1):
        inner.objects.clear()
        inner.objects.update(pristine)
        crashing = CrashingStorage(inner, crash_at)
        with pytest.raises(StorageError):
            run_prune(Repository.open(crashing, PASSWORD), max_unused=0.0)
        report = check_repository(reopen(repo, load_index=False))
        assert report.errors == [], (crash_at, report.errors)
        run_prune(reopen(repo), max_unused=0.0)  # the next prune finishes the job
        final = check_repository(reopen(repo, load_index=False), ReadSubset())
        assert final.errors == [] and final.unused_blobs == 0, crash_at
        assert restore_digest(reopen(repo), snap_b, tmp_path / f"out{crash_at}", b_dir) == digest_tree(b_dir)


def entry(blob: int, offset: int, length: int = 100) -> BlobEntry:
    return BlobEntry(0, bytes([blob]) * 32, offset, length, 0)


def plan_of(
    packs: dict[bytes, list[BlobEntry]], stored: dict[bytes, int], used: set[bytes], max_unused: float = 0.05
) -> PrunePlan:
    """plan_prune on entries and IDs as lists and sets (packed as run_prune passes them)."""
    return plan_prune({p: pack_rows(list(e)) for p, e in packs.items()}, stored, BlobSet.of(list(used)), max_unused)


def test_plan_gives_duplicates_to_the_busiest_pack() -> None:
    p1, p2 = b"\x01" * 32, b"\x02" * 32
    packs = {p1: [entry(1, 0), entry(2, 100)], p2: [entry(1, 0)]}
    stored = {p1: 200, p2: 100}
    plan = plan_of(packs, stored, {bytes([1]) * 32, bytes([2]) * 32}, max_unused=0.0)
    assert [u.pack_id for u in plan.keep] == [p1]
    assert [u.pack_id for u in plan.remove] == [p2]


def test_plan_repacks_only_beyond_the_tolerated_unused_space() -> None:
    packs = {bytes([i]) * 32: [entry(i, 0, 900), entry(100 + i, 900, 100)] for i in range(10)}
    stored = {p: 1000 for p in packs}
    used = {bytes([i]) * 32 for i in range(10)}  # 10% of every pack unused
    assert plan_of(packs, stored, used, max_unused=0.5).repack == []
    assert len(plan_of(packs, stored, used, max_unused=0.0).repack) == 10
    some = plan_of(packs, stored, used, max_unused=0.05)
    assert 0 < len(some.repack) < 10
    assert some.bytes_unused_after <= 0.05 * 9000


def test_plan_removes_unindexed_packs_and_refuses_lost_blobs() -> None:
    p1 = b"\x01" * 32
    plan = plan_of({p1: [entry(1, 0)]}, {p1: 100, b"\x09" * 32: 50}, {bytes([1]) * 32})
    assert plan.unindexed == {b"\x09" * 32: 50}
    with pytest.raises(PruneRefused):
        plan_of({p1: [entry(1, 0)]}, {}, {bytes([1]) * 32})


def test_referenced_blobs_covers_trees_and_content(two_snapshots) -> None:  # type: ignore[no-untyped-def]
    repo, *_ = two_snapshots
    used = referenced_blobs(reopen(repo))
    r = reopen(repo)
    all_ids = {e.id for _, e in r.index.entries()}
    assert set(used) == all_ids and len(used) == len(all_ids)  # nothing forgotten yet: every stored blob is referenced


def test_backup_whose_lock_lapsed_refuses_to_save(tmp_path: Path) -> None:
    repo = memory_repository()
    lock = repo.lock()
    make_files(tmp_path / "d", seed=3, count=2)
    lock._written_at = time.time() - STALE_AFTER  # as if the process had been suspended for half an hour
    with pytest.raises(RepositoryLocked):
        backup(repo, tmp_path / "d")
    assert not [n for n in memory_objects(repo) if n.startswith(layout.SNAPSHOTS)]
    repo.close()


def test_plan_lists_the_duplicates_whose_other_copies_go_away() -> None:
    p1, p2, p3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    # blob 1 in all three packs; p1 is the busiest (kept), p2 goes (only a copy), p3 stays (blob 3 is only there)
    packs = {p1: [entry(1, 0), entry(2, 100)], p2: [entry(1, 0)], p3: [entry(1, 0), entry(3, 100)]}
    stored = {p1: 200, p2: 100, p3: 200}
    plan = plan_of(packs, stored, {bytes([i]) * 32 for i in (1, 2, 3)}, max_unused=1.0)
    assert [u.pack_id for u in plan.remove] == [p2]
    assert [(d.pack_id, d.entry.id, d.others) for d in plan.duplicates] == [(p1, bytes([1]) * 32, [p2])]
    # nothing goes (p3 holds blob 3 too): no copy to read back
    used = {bytes([i]) * 32 for i in (1, 2, 3)}
    kept = plan_of({p1: packs[p1], p3: packs[p3]}, stored, used, max_unused=1.0)
    assert kept.remove == kept.repack == [] and kept.duplicates == []


@pytest.fixture
def stored_twice(tmp_path: Path) -> tuple[Repository, Snapshot, Path]:
    """A backed-up tree one of whose data blobs is stored a second time, in a pack of its own (as two backups
    running at once store the same new data)."""
    repo = memory_repository()
    src = tmp_path / "src"
    make_files(src, seed=5, count=4)
    snap = backup(repo, src)
    repo = reopen(repo)
    node = Tree.decode(repo.load_blob(bytes.fromhex(snap.tree))).nodes[0]
    while node.type == DIR:
        assert node.subtree is not None
        node = Tree.decode(repo.load_blob(node.subtree)).nodes[0]
    first = repo.index.lookup(node.content[0])
    assert first is not None
    pack_id, entry = first
    repo.save_sealed_blob(entry, repo.load_pack_range(pack_id, entry.offset, entry.length))
    repo.flush()
    return reopen(repo), snap, src


def _kept_and_gone(repo: Repository) -> tuple[bytes, BlobEntry, list[bytes]]:
    """A data blob stored twice, as the prune plan sees it: the pack whose copy it keeps, that copy, the others."""
    # no unused space tolerated: of the two packs holding the blob, whichever does not keep it goes or is repacked
    plan = run_prune(repo, 0.0, dry_run=True).plan
    assert len(plan.duplicates) == 1
    return plan.duplicates[0].pack_id, plan.duplicates[0].entry, plan.duplicates[0].others


def test_prune_deletes_the_other_copies_once_the_kept_copy_reads_back(stored_twice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, snap, src = stored_twice
    _pack, _entry, others = _kept_and_gone(repo)
    result = run_prune(repo, 0.0)
    assert result.warnings == []
    assert all(layout.pack_name(p) not in memory_objects(repo) for p in others)
    assert restore_digest(reopen(repo), snap, tmp_path / "out", src) == digest_tree(src)


def test_prune_keeps_the_other_copies_of_a_blob_whose_kept_copy_is_damaged(stored_twice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, snap, src = stored_twice
    pack, damaged, others = _kept_and_gone(repo)
    objects = memory_objects(repo)
    name = layout.pack_name(pack)
    body = bytearray(objects[name])
    body[damaged.offset + damaged.length // 2] ^= 0xFF
    objects[name] = bytes(body)
    result = run_prune(repo, 0.0)
    assert len(result.warnings) == 1 and damaged.id.hex() in result.warnings[0] and pack.hex() in result.warnings[0]
    assert all(layout.pack_name(p) in memory_objects(repo) for p in others)  # the good copy survives
    # every file still restores (the damaged copy, if read first, is replaced by the other one)
    assert restore_digest(reopen(repo), snap, tmp_path / "out", src) == digest_tree(src)
