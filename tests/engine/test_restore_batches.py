"""restore writes planned batches of files (here, or in child processes while the walk plans the next): with
batches of a few files, a tree with hardlinks, duplicates and empty files comes back exact, and a lost pack only
costs the files it feeds."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sauvegarde.engine import restore as restore_module
from sauvegarde.engine.restore import Restore, RestoreOptions

from .repo_helpers import backup, make_files, memory_objects, memory_repository, pack_names, reopen


def make_tree(root: Path) -> None:
    make_files(root, seed=3, count=12)
    for d in range(4):
        sub = root / f"d{d}" / "deeper"
        sub.mkdir(parents=True)
        for i in range(5):
            (sub / f"t{i}.txt").write_bytes(f"file {d}-{i}\n".encode() * (i + 1))
        (sub / "empty").write_bytes(b"")
        (sub / "same.bin").write_bytes(b"duplicate content " * 100)  # the same blob in four files
    os.link(root / "d0" / "deeper" / "t1.txt", root / "d3" / "deeper" / "link-to-d0")  # its first is batches back
    os.link(root / "d3" / "deeper" / "t4.txt", root / "d0" / "link-to-d3")  # walked before its first


def snapshot_of(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_ino)
    return out


def hardlink_groups(files: dict[str, tuple[str, int]]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for name, (_digest, ino) in files.items():
        groups.setdefault(ino, set()).add(name)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


@pytest.mark.parametrize("processes", [0, 2])
@pytest.mark.parametrize("batch", [1, 3, 4096])
def test_batched_restore_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, processes: int) -> None:
    monkeypatch.setattr(restore_module, "_BATCH_FILES", batch)
    src = tmp_path / "src"
    make_tree(src)
    repo = memory_repository()
    snap = backup(repo, src)
    target = tmp_path / "target"
    opts = RestoreOptions(target=str(target), verify=True, workers=2, processes=processes)
    summary = Restore(reopen(repo), snap, opts).run()
    assert summary.errors == []
    before, after = snapshot_of(src), snapshot_of(target / str(src).lstrip("/"))
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert hardlink_groups(after) == hardlink_groups(before) and len(hardlink_groups(before)) == 2
    assert summary.verified == len([f for f in before if f not in ("d3/deeper/link-to-d0", "d0/link-to-d3")])


def test_lost_pack_costs_only_its_files_with_small_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "_BATCH_FILES", 2)
    src = tmp_path / "src"
    make_files(src, seed=5, count=10, size=60_000)
    repo = memory_repository(pack_size=64 * 1024)  # several data packs
    snap = backup(repo, src)
    repo = reopen(repo)
    data = [n for n in pack_names(repo) if any(e.type == 0 for e in repo.read_pack_header(bytes.fromhex(n[-64:])))]
    assert len(data) > 2
    del memory_objects(repo)[data[len(data) // 2]]
    target = tmp_path / "target"
    summary = Restore(repo, snap, RestoreOptions(target=str(target), workers=2)).run()
    lost = {e["path"] for e in summary.errors}
    assert lost and all("not restored" in e["error"] for e in summary.errors)
    restored = snapshot_of(target / str(src).lstrip("/"))
    source = snapshot_of(src)
    assert len(restored) == len(source) - len(lost)
    for name, (digest, _ino) in restored.items():
        assert source[name][0] == digest
