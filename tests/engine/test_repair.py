"""repair index rebuilds the index from pack headers; repair snapshots saves what is still readable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sauvegarde.engine import check_places
from sauvegarde.engine.check import ReadSubset, check_repository
from sauvegarde.engine.repair import REPAIRED_TAG, repair_index, repair_snapshots
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.repository import layout

from .repo_helpers import backup, make_files, memory_objects, memory_repository, reopen


@pytest.fixture(autouse=True, params=["dict", "array"])
def places(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here with both forms of check's blob map (check_places): ArrayPlaces from the first blob, or
    DictPlaces whatever the size."""
    monkeypatch.setattr(check_places, "ARRAY_FROM", 0 if request.param == "array" else 1 << 62)
    return str(request.param)


def test_repair_index_after_index_loss(tmp_path: Path) -> None:
    repo = memory_repository()
    make_files(tmp_path / "d", seed=5, count=6)
    snap = backup(repo, tmp_path / "d")
    objects = memory_objects(repo)
    for name in [n for n in objects if n.startswith(layout.INDEX)]:
        del objects[name]
    broken = check_repository(reopen(repo, load_index=False))
    assert broken.errors  # every blob is now in no index
    dry = repair_index(reopen(repo, load_index=False), dry_run=True)
    assert not [n for n in objects if n.startswith(layout.INDEX)]
    result = repair_index(reopen(repo, load_index=False))
    assert result.packs_indexed == dry.packs_indexed == len([n for n in objects if n.startswith(layout.DATA)])
    report = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert report.problems == []
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(tmp_path / "out"), workers=2)).run()
    assert not summary.errors


def test_repair_index_skips_unreadable_packs_and_replaces_old_indexes(tmp_path: Path) -> None:
    repo = memory_repository()
    make_files(tmp_path / "d", seed=6, count=6)
    backup(repo, tmp_path / "d")
    objects = memory_objects(repo)
    old = {n for n in objects if n.startswith(layout.INDEX)}
    pack = next(n for n in objects if n.startswith(layout.DATA))
    objects[pack] = objects[pack][:-3] + b"\xff\xff\xff"  # header length now absurd
    result = repair_index(reopen(repo, load_index=False))
    assert list(result.packs_unreadable) == [pack.rsplit("/", 1)[-1]]
    new = {n for n in objects if n.startswith(layout.INDEX)}
    assert not (old & new) and len(new) == result.indexes_written


def test_repair_snapshots_drops_only_lost_files(tmp_path: Path) -> None:
    repo = memory_repository()
    data = tmp_path / "d"
    make_files(data, seed=7, count=10)
    snap = backup(repo, data)
    r = reopen(repo)
    # lose one data pack
    victim = next(pid for pid, e in r.index.entries() if e.type == 0)
    del memory_objects(repo)[layout.pack_name(victim)]
    fixed_repo = reopen(repo, load_index=False)
    results = repair_snapshots(fixed_repo, fixed_repo.snapshots(), forget=False)
    fixed_repo.close()
    (res,) = results
    assert res.new_snapshot and res.removed_count > 0
    after = reopen(repo)
    new = after.load_snapshot(res.new_snapshot)
    assert REPAIRED_TAG in new.tags and new.extra["repaired"]["from"] == snap.id
    assert snap.id in after.snapshot_ids()  # the damaged original stays unless --forget
    out = tmp_path / "out"
    summary = Restore(after, new, RestoreOptions(target=str(out), workers=2)).run()
    assert not summary.errors
    restored = {p.relative_to(out / str(data).lstrip("/")) for p in out.rglob("*.bin")}
    original = {p.relative_to(data) for p in data.rglob("*.bin")}
    removed = {Path(p).relative_to(data) for p in res.removed}
    assert restored == original - removed and removed
    for rel in restored:  # what is left is byte for byte the original
        got = (out / str(data).lstrip("/") / rel).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256((data / rel).read_bytes()).digest()


def test_repair_snapshots_with_forget_and_nothing_to_do(tmp_path: Path) -> None:
    repo = memory_repository()
    make_files(tmp_path / "d", seed=8, count=4)
    snap = backup(repo, tmp_path / "d")
    r = reopen(repo, load_index=False)
    (res,) = repair_snapshots(r, r.snapshots(), forget=True)
    assert res.removed_count == 0 and not res.new_snapshot
    assert reopen(repo).snapshot_ids() == [snap.id]
    r = reopen(repo)
    victim = next(pid for pid, e in r.index.entries() if e.type == 0)
    del memory_objects(repo)[layout.pack_name(victim)]
    r = reopen(repo, load_index=False)
    (res,) = repair_snapshots(r, r.snapshots(), forget=True)
    assert reopen(repo).snapshot_ids() == [res.new_snapshot]
    assert check_repository(reopen(repo, load_index=False)).errors[0].kind == "pack_missing"
