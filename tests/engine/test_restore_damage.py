"""restore of a damaged pack: blobs the damage does not reach are still restored (regression: a truncated pack made
restore fail every blob fetched in the same ranged read, intact ones included)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.repository import layout

from .repo_helpers import backup, make_files, memory_objects, memory_repository, pack_names, reopen


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.bin")}


def test_truncated_pack_loses_only_the_blobs_cut_off(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_files(src, seed=7, count=6)
    repo = memory_repository(pack_size=16 * 1024 * 1024)  # every data blob in one pack, fetched in one read
    snap = backup(repo, src)
    repo = reopen(repo)
    data_packs = [n for n in pack_names(repo) if {e.type for e in repo.read_pack_header(layout.id_from_name(n))} == {0}]
    assert len(data_packs) == 1
    name = data_packs[0]
    entries = sorted(repo.read_pack_header(layout.id_from_name(name)), key=lambda e: e.offset)
    last = entries[-1]
    objects = memory_objects(repo)
    objects[name] = objects[name][: last.offset + last.length // 2]  # cuts into the last blob only

    target = tmp_path / "target"
    summary = Restore(repo, snap, RestoreOptions(target=str(target), workers=2)).run()

    lost = [e["path"] for e in summary.errors]
    assert len(lost) == 1, summary.errors  # the file holding the last blob (make_files gives each file its blobs)
    assert last.id.hex() in summary.errors[0]["error"]
    restored = _digests(target / str(src).lstrip("/"))
    expected = _digests(src)
    assert {k: v for k, v in expected.items() if not lost[0].endswith(k)} == restored
