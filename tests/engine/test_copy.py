"""Copying snapshots between repositories with different keys: same files back out, each blob sent once, no repeats."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import msgpack
import pytest

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.copy import Copier, copy_snapshots
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.engine.walk import TreeLoader, resolve, walk
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.repository.blobs import BlobType
from sauvegarde.repository.testing import memory_repository

SHARED = random.Random(1).randbytes(40_000)  # several chunks with the test chunker


def build_tree(root: Path) -> None:
    (root / "docs" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "a.bin").write_bytes(SHARED)
    (root / "docs" / "copy-of-a.bin").write_bytes(SHARED)  # same content: same blobs
    (root / "docs" / "deep" / "deeper" / "big.bin").write_bytes(random.Random(2).randbytes(150_000))
    (root / "docs" / "note.txt").write_bytes(b"hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "docs" / "deep" / "same-note.txt").write_bytes(b"hello\n")
    os.symlink("docs/note.txt", root / "link")
    os.symlink("/nonexistent/target", root / "docs" / "dangling")
    os.chmod(root / "docs" / "note.txt", 0o640)


def backup(repo: Repository, path: Path, tags: list[str] | None = None) -> Snapshot:
    return Backup(repo, BackupOptions(paths=[str(path)], tags=tags or [], hostname="box", workers=2)).run()


def restore(repo: Repository, snap: Snapshot, target: Path) -> None:
    summary = Restore(repo, snap, RestoreOptions(target=str(target), workers=2)).run()
    assert not summary.errors


def tree_state(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Relative path -> (kind, content or link target, permission bits)."""
    out: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("symlink", os.readlink(p).encode(), 0)
            elif p.is_dir():
                out[rel] = ("dir", b"", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", p.read_bytes(), st.st_mode & 0o7777)
    return out


def data_blob_ids(repo: Repository) -> set[bytes]:
    return {e.id for _, e in repo.index.entries() if e.type == BlobType.DATA}


@pytest.fixture
def repos() -> tuple[Repository, Repository]:
    return memory_repository(), memory_repository()


def test_copied_snapshot_restores_the_same_files(tmp_path: Path, repos: tuple[Repository, Repository]) -> None:
    src, dst = repos
    assert src.master.id_key != dst.master.id_key
    root = tmp_path / "src"
    root.mkdir()
    build_tree(root)
    snap = backup(src, root, tags=["nightly", "db"])

    [result] = copy_snapshots(src, dst, src.snapshots())

    assert result.status == "copied" and result.source_id == snap.id
    assert result.blobs_added > 0 and result.bytes_added > 0
    [copied] = dst.snapshots()
    assert copied.id == result.dest_id
    assert copied.original == snap.id
    assert copied.tree != snap.tree  # keyed IDs differ between the repositories
    for name in ("time", "paths", "hostname", "username", "uid", "gid", "tags", "program_version", "summary"):
        assert getattr(copied, name) == getattr(snap, name), name

    restore(dst, copied, tmp_path / "out")
    restored_root = tmp_path / "out" / str(root).lstrip("/")
    assert tree_state(restored_root) == tree_state(root)

    # the content is reachable through the destination's own IDs, file by file
    node, _ = resolve(TreeLoader(dst), bytes.fromhex(copied.tree), str(root / "docs" / "deep" / "deeper" / "big.bin"))
    assert node is not None
    assert b"".join(dst.load_blob(b) for b in node.content) == random.Random(2).randbytes(150_000)
    assert data_blob_ids(dst).isdisjoint(data_blob_ids(src))
    assert len(data_blob_ids(dst)) == len(data_blob_ids(src))


def test_copying_again_skips_and_copying_back_too(tmp_path: Path, repos: tuple[Repository, Repository]) -> None:
    src, dst = repos
    root = tmp_path / "src"
    root.mkdir()
    build_tree(root)
    snap = backup(src, root)
    [first] = copy_snapshots(src, dst, src.snapshots())
    packs_before = set(dst.list_packs())

    [again] = copy_snapshots(src, dst, src.snapshots())
    assert again.status == "skipped" and again.dest_id == first.dest_id and again.source_id == snap.id
    assert len(dst.snapshots()) == 1
    assert set(dst.list_packs()) == packs_before

    # the copy in dst names snap as its original: copying it back to src, or on to a third repository that
    # already has a copy of snap, is recognised as well
    [back] = copy_snapshots(dst, src, dst.snapshots())
    assert back.status == "skipped" and back.dest_id == snap.id
    third = memory_repository()
    copy_snapshots(src, third, src.snapshots())
    [via_dst] = copy_snapshots(dst, third, dst.snapshots())
    assert via_dst.status == "skipped"
    assert len(third.snapshots()) == 1


def test_shared_blobs_are_read_and_uploaded_once(
    tmp_path: Path, repos: tuple[Repository, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = repos
    root = tmp_path / "src"
    root.mkdir()
    build_tree(root)
    first = backup(src, root)
    (root / "new.bin").write_bytes(random.Random(3).randbytes(30_000))
    second = backup(src, root)
    assert second.parent == first.id

    loads: Counter[bytes] = Counter()
    real_load = src.load_blob

    def counting_load(blob_id: bytes) -> bytes:
        loads[blob_id] += 1
        return real_load(blob_id)

    monkeypatch.setattr(src, "load_blob", counting_load)
    saved: Counter[bytes] = Counter()
    real_save = dst.save_blob

    def counting_save(btype: BlobType, data: bytes, blob_id: bytes | None = None) -> tuple[bytes, bool]:
        new_id, added = real_save(btype, data, blob_id)
        if added:
            saved[new_id] += 1
        return new_id, added

    monkeypatch.setattr(dst, "save_blob", counting_save)

    copier = Copier(src, dst)
    r1, r2 = copier.run(src.snapshots())

    assert max(loads.values()) == 1  # every source blob (data or tree) read once
    assert max(saved.values()) == 1  # and stored once
    assert len(saved) == r1.blobs_added + r2.blobs_added == len(list(dst.index.entries()))
    assert len(data_blob_ids(dst)) == len(data_blob_ids(src))
    # the second snapshot adds only the new file's content and the trees that differ from the first snapshot's
    new_content = set(_content_ids(src, second, root / "new.bin"))
    assert new_content and new_content.isdisjoint(_content_ids(src, first, root / "a.bin"))
    new_trees = _tree_ids(src, second) - _tree_ids(src, first)
    assert len(new_trees) >= len(root.parts)  # at least those from the snapshot root down to root
    assert r2.blobs_added == len(new_content) + len(new_trees)
    # the parent link now points inside the destination
    copied_first, copied_second = dst.snapshots()
    assert copied_second.parent == copied_first.id == r1.dest_id
    assert copied_first.parent is None

    # the second snapshot restores completely from the destination
    restore(dst, copied_second, tmp_path / "out")
    assert tree_state(tmp_path / "out" / str(root).lstrip("/")) == tree_state(root)


def _content_ids(repo: Repository, snap: Snapshot, path: Path) -> list[bytes]:
    node, _ = resolve(TreeLoader(repo), bytes.fromhex(snap.tree), str(path))
    assert node is not None
    return node.content


def _tree_ids(repo: Repository, snap: Snapshot) -> set[bytes]:
    root = bytes.fromhex(snap.tree)
    return {root} | {n.subtree for _, n in walk(TreeLoader(repo), root) if n.subtree is not None}


def test_unknown_node_fields_survive_the_copy(repos: tuple[Repository, Repository]) -> None:
    src, dst = repos
    data_id, _ = src.save_blob(BlobType.DATA, b"some content")
    leaf = {"v": 1, "n": [{"n": b"f", "t": "file", "s": 12, "c": data_id, "zz": [1, "future"]}]}
    leaf_id, _ = src.save_blob(BlobType.TREE, msgpack.packb(leaf))
    root = {"v": 1, "n": [{"n": b"d", "t": "dir", "st": leaf_id, "yy": b"\x00"}], "future": True}
    root_id, _ = src.save_blob(BlobType.TREE, msgpack.packb(root))
    src.flush()
    snap = Snapshot(time="2026-01-02T03:04:05.000000006+00:00", tree=root_id.hex(), paths=["/d"], hostname="h")
    snap.extra["guard"] = {"verdict": "ok"}
    src.save_snapshot(snap)

    [result] = copy_snapshots(src, dst, src.snapshots())

    [copied] = dst.snapshots()
    assert copied.extra == {"guard": {"verdict": "ok"}}
    new_root = msgpack.unpackb(dst.load_blob(bytes.fromhex(copied.tree)))
    assert new_root["future"] is True and new_root["n"][0]["yy"] == b"\x00"
    new_leaf = msgpack.unpackb(dst.load_blob(new_root["n"][0]["st"]))
    assert new_leaf["n"][0]["zz"] == [1, "future"]
    assert dst.load_blob(new_leaf["n"][0]["c"]) == b"some content"
    assert result.blobs_added == 3
