"""The unchanged-file fast path: what counts as unchanged, what is carried over, and when files are re-read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgpack
import pytest

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.parent import ParentTrees, reuse_entry, stat_unchanged
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.repository import Repository
from sauvegarde.repository.blobs import BlobType
from sauvegarde.repository.tree import LARGE_TREE

from .repo_helpers import make_files, memory_repository, reopen


def run(repo: Repository, path: Path):  # type: ignore[no-untyped-def]
    job = Backup(repo, BackupOptions(paths=[str(path)], hostname="box", workers=2))
    snap = job.run()
    return snap, job.summary


def node_of(repo: Repository, snap, path: Path):  # type: ignore[no-untyped-def]
    node, _ = resolve(TreeLoader(repo), bytes.fromhex(snap.tree), str(path))
    return node


def test_stat_unchanged_needs_every_field(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    st = os.lstat(f)
    w = {"n": b"f", "t": "file", "s": 100, "mt": st.st_mtime_ns, "ct": st.st_ctime_ns, "i": st.st_ino, "c": b"a" * 32}
    assert stat_unchanged(st, w)
    for key, value in (("s", 101), ("mt", 1), ("ct", 1), ("i", 1), ("t", "dir"), ("c", b"short")):
        assert not stat_unchanged(st, {**w, key: value}), key
    assert not stat_unchanged(st, {k: v for k, v in w.items() if k != "c"})  # content lost but size > 0


def test_reuse_entry_refreshes_atime_and_device(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    st = os.lstat(f)
    w = {"n": b"f", "t": "file", "at": 5, "d": 7, "zz": "future field"}
    out = reuse_entry(w, st)
    assert out is w  # updated in place: the parent listing is not kept twice
    assert out["at"] == st.st_atime_ns and out["d"] == st.st_dev and out["zz"] == "future field"


def test_reuse_entry_drops_zero_fields() -> None:
    w = {"n": b"f", "t": "file", "at": 5, "d": 7}
    st = os.stat_result((0o100644, 1, 0, 1, 0, 0, 1, 0, 0, 0))  # st_dev 0, atime 0
    assert reuse_entry(w, st) == {"n": b"f", "t": "file"}


def test_unchanged_files_are_carried_over_and_metadata_changes_seen(tmp_path: Path) -> None:
    repo = memory_repository()
    data = tmp_path / "d"
    make_files(data, seed=11, count=6)
    _, first = run(repo, data)
    assert first.files_new == 6
    snap, second = run(reopen(repo), data)
    assert second.files_unmodified == 6 and second.bytes_added < 20_000
    target = data / "f11-0.bin"
    os.chmod(target, 0o600)  # ctime moves: the file is looked at again and its new mode recorded
    snap3, third = run(reopen(repo), data)
    assert third.files_unmodified == 5 and third.files_changed == 1
    r = reopen(repo)
    assert node_of(r, snap3, target).mode == 0o600
    assert node_of(r, snap3, target).content == node_of(r, snap, target).content  # same data, deduplicated


def test_file_whose_blobs_left_the_index_is_read_again(tmp_path: Path) -> None:
    repo = memory_repository()
    data = tmp_path / "d"
    make_files(data, seed=12, count=2)
    snap, _ = run(repo, data)
    # a fresh repository object whose index lacks one file's blobs, as after a damaged index
    r = reopen(repo)
    lost = node_of(r, snap, data / "f12-0.bin").content
    r2 = reopen(repo, load_index=False)
    r2.index.add_files(f.to_index_file() for f in r.load_packed_index_files()[0])
    assert r2.index.known([b"".join(lost)]) == [True]
    r3 = reopen(repo, load_index=False)
    files = [f.to_index_file() for f in r3.load_packed_index_files()[0]]
    for f in files:
        for pid in list(f.packs):
            f.packs[pid] = [e for e in f.packs[pid] if e.id not in lost]
    r3.index.add_files(files)
    assert r3.index.known([b"".join(lost)]) == [False]
    _, summary = run(r3, data)
    assert summary.files_unmodified == 1 and summary.files_changed == 1


def test_index_known_handles_pending_and_empty() -> None:
    repo = memory_repository()
    blob_id, _ = repo.save_blob(BlobType.DATA, b"hello" * 1000)
    repo.flush()  # now in the pending part of the index, not the sorted table
    assert repo.index.known([blob_id, b"", b"\x00" * 32, blob_id + blob_id]) == [True, True, False, True]


def tree_saves(repo: Repository) -> list[bytes]:
    """Record the tree blobs a backup stores (IDs), by wrapping save_blob."""
    saved: list[bytes] = []
    real = repo.save_blob

    def spy(btype, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(btype, data, *args, **kwargs)
        if btype == BlobType.TREE:
            saved.append(out[0])
        return out

    repo.save_blob = spy  # type: ignore[method-assign,assignment]
    return saved


def test_unchanged_directories_reuse_their_parent_tree(tmp_path: Path) -> None:
    data = tmp_path / "d"
    for leaf in ("a/x", "a/y", "b"):
        make_files(data / leaf, seed=len(leaf) + ord(leaf[0]), count=3)
    repo = memory_repository()
    first, _ = run(repo, data)
    second_repo = reopen(repo)
    saved = tree_saves(second_repo)
    second, summary = run(second_repo, data)
    assert summary.files_unmodified == 9 and summary.files_changed == 0
    # the data directory's tree, not the snapshot's: that one holds the ancestors (/tmp...), whose times any other
    # process creating a file there moves between two backups
    assert node_of(second_repo, second, data).subtree == node_of(repo, first, data).subtree
    # leaf directories (files only, all carried over as they were) are not encoded again; the others are, since
    # a directory's own node is made from a fresh stat
    leaves = [node_of(second_repo, second, data / leaf).subtree for leaf in ("a/x/sub", "a/y/sub", "b/sub")]
    assert not set(leaves) & set(saved) and saved

    # an access time moved: that directory's tree is new, and holds the new time
    target = data / "a" / "x" / "sub" / os.listdir(data / "a" / "x" / "sub")[0]
    st = os.stat(target)
    os.utime(target, ns=(st.st_atime_ns + 10**9, st.st_mtime_ns))
    third_repo = reopen(repo)
    saved = tree_saves(third_repo)
    third, _ = run(third_repo, data)
    moved = node_of(third_repo, third, data / "a" / "x" / "sub")
    assert moved.subtree in saved and moved.subtree != leaves[0]
    assert node_of(third_repo, third, target).atime_ns == st.st_atime_ns + 10**9
    assert node_of(third_repo, third, data / "a" / "y" / "sub").subtree == leaves[1]


def test_a_backup_leaves_access_times_as_it_found_them(tmp_path: Path) -> None:
    """Directories are listed and files read without moving their access time; a symlink's target cannot be read
    without moving it, so symlinks (like directories) are stored without one, and the next backup of an unchanged
    tree stores the same trees."""
    data = tmp_path / "d"
    for leaf in ("a/x", "b"):
        make_files(data / leaf, seed=len(leaf), count=2)
    os.symlink("x", data / "a" / "link")
    entries = sorted([data, *data.rglob("*")])
    now = time.time_ns()
    old_atime, old_mtime = now - 3 * 86400 * 10**9, now - 4 * 86400 * 10**9  # relatime updates such an atime

    def age() -> None:
        for p in entries:
            os.utime(p, ns=(old_atime, old_mtime), follow_symlinks=False)

    age()
    os.listdir(data / "b")
    if os.stat(data / "b").st_atime_ns == old_atime:
        pytest.skip("this file system does not record access times when a directory is read")
    age()
    repo = memory_repository()
    first, _ = run(repo, data)
    unmoved = [p for p in entries if not p.is_symlink()]
    assert [os.lstat(p).st_atime_ns for p in unmoved] == [old_atime] * len(unmoved)
    assert node_of(repo, first, data / "a" / "link").atime_ns == 0
    second_repo = reopen(repo)
    second, _ = run(second_repo, data)
    assert node_of(second_repo, second, data).subtree == node_of(repo, first, data).subtree  # not the ancestors'


def _wire(i: int) -> dict[str, object]:
    return {
        "n": b"f%05d.1.gz" % i,
        "t": "file",
        "m": 0o644,
        "U": "root",
        "G": "root",
        "s": 100 + i,
        "i": 5000 + i,
        "d": 65024,
        "k": "gz",
        "c": bytes([i % 256]) * 32,
        "mt": 10**18 + i,
    }


class _Blobs:
    """A repository stand-in whose every blob is ``blob``."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def load_blob(self, _blob_id: bytes) -> bytes:
        return self.blob


def test_a_large_listing_decodes_as_msgpack_reads_it_with_repeated_values_shared() -> None:
    wires = [_wire(i) for i in range(3000)]
    blob = msgpack.packb({"v": 1, "n": [*wires, "not an entry", {"t": "file"}]})
    assert len(blob) >= LARGE_TREE
    got = ParentTrees(_Blobs(blob)).listing(b"id")  # type: ignore[arg-type]
    assert got == {w["n"]: w for w in wires}
    first, last = got[b"f00000.1.gz"], got[b"f02999.1.gz"]
    for key in ("t", "U", "G", "k", "m", "d"):
        assert first[key] is last[key], key  # one object for each value repeated
    assert ParentTrees(_Blobs(msgpack.packb({"n": wires, "v": 1}))).listing(b"id") == got  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [10, 3000], ids=["small", "large"])
def test_a_damaged_listing_is_empty_whatever_its_size(count: int) -> None:
    """Read whole (small) or entry by entry (large), a listing that is not a version-1 tree counts as empty: its
    files are read again."""
    wires = [_wire(i) for i in range(count)]
    good = msgpack.packb({"v": 1, "n": wires})
    assert len(ParentTrees(_Blobs(good)).listing(b"id")) == count  # type: ignore[arg-type]
    for damaged in (
        good[:-7],  # cut short
        good + b"\x00",  # something after it
        msgpack.packb({"v": 2, "n": wires}),
        msgpack.packb({"n": wires}),
        msgpack.packb([1, wires]),
        msgpack.packb({"v": 1, "n": {"a": 1}}),
    ):
        assert ParentTrees(_Blobs(damaged)).listing(b"id") == {}  # type: ignore[arg-type]


def test_a_directory_with_a_large_listing_is_carried_over(tmp_path: Path) -> None:
    repo = memory_repository()
    data = tmp_path / "d"
    data.mkdir()
    for i in range(1500):
        (data / f"file-with-a-long-name-{i:05d}.txt").write_bytes(b"%d" % i)
    _, first = run(repo, data)
    assert first.files_new == 1500
    _, second = run(reopen(repo), data)
    assert second.files_unmodified == 1500 and second.files_new == second.files_changed == 0
