"""restore of a damaged pack: blobs the damage does not reach are still restored (regression: a truncated pack made
restore fail every blob fetched in the same ranged read, intact ones included)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.errors import IntegrityError
from sauvegarde.repository import Repository, Snapshot, layout
from sauvegarde.repository.blobs import BlobEntry, BlobType

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


def _store_everything_again(repo: Repository) -> None:
    """A second copy of every blob, in new packs (a session that did not load the index writes them again)."""
    r = reopen(repo)
    blobs = [(entry.type, entry.id) for _pid, entry in r.index.entries()]
    again = reopen(repo, load_index=False)
    for btype, blob_id in blobs:
        again.save_blob(btype, r.load_blob(blob_id))
    again.flush()


def _backed_up_twice(
    tmp_path: Path, seed: int, count: int, pack_size: int = 64 * 1024
) -> tuple[Path, Repository, Snapshot]:
    """A small tree backed up, then every blob of the repository stored a second time."""
    src = tmp_path / "src"
    make_files(src, seed=seed, count=count)
    repo = memory_repository(pack_size=pack_size)
    snap = backup(repo, src)
    _store_everything_again(repo)
    return src, repo, snap


def _damage_first_copies(repo: Repository) -> set[bytes]:
    """Flip a byte inside the copy of each blob the index gives first; the blobs damaged."""
    r = reopen(repo)
    objects = memory_objects(repo)
    damaged: set[bytes] = set()
    for _pid, entry in list(r.index.entries()):
        pack_id, first = r.index.lookup(entry.id) or (b"", entry)
        name = layout.pack_name(pack_id)
        if entry.id in damaged:
            continue
        body = bytearray(objects[name])
        body[first.offset + first.length // 2] ^= 1
        objects[name] = bytes(body)
        damaged.add(entry.id)
    return damaged


def test_blobs_with_a_damaged_copy_are_restored_from_the_other(tmp_path: Path) -> None:
    """Every tree and data blob stored twice, and the copy the index names first damaged: restore reads the other
    copies, so every file comes back exact, with a warning per damaged data blob naming the damage."""
    src, repo, snap = _backed_up_twice(tmp_path, seed=11, count=6)
    damaged = _damage_first_copies(repo)
    opened = reopen(repo)
    data_blobs = {e.id for _p, e in opened.index.entries() if e.type == BlobType.DATA}
    assert data_blobs and data_blobs < damaged  # every data blob and tree has its first copy damaged
    assert all(len(opened.index.copies(b)) == 2 for b in damaged)

    target = tmp_path / "target"
    summary = Restore(opened, snap, RestoreOptions(target=str(target), workers=2)).run()

    assert summary.errors == []
    assert _digests(target / str(src).lstrip("/")) == _digests(src)
    warned = [w["warning"] for w in summary.warnings]
    assert len(warned) == len(data_blobs)
    assert all("restored from another copy" in w and "authentication failed" in w for w in warned)


def test_a_blob_damaged_in_every_copy_fails_its_file_and_says_so(tmp_path: Path) -> None:
    src, repo, snap = _backed_up_twice(tmp_path, seed=12, count=2)
    opened = reopen(repo)
    data = sorted((e.id, pid, e) for pid, e in opened.index.entries() if e.type == BlobType.DATA)
    blob_id = data[0][0]
    objects = memory_objects(repo)
    copies = opened.index.copies(blob_id)
    assert len(copies) == 2
    for pack_id, entry in copies:
        name = layout.pack_name(pack_id)
        body = bytearray(objects[name])
        body[entry.offset + 3] ^= 1
        objects[name] = bytes(body)
    with pytest.raises(IntegrityError, match=r"and 1 other copy failed too"):
        reopen(repo).load_blob(blob_id)

    target = tmp_path / "target"
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2)).run()

    assert len(summary.errors) == 1
    assert blob_id.hex() in summary.errors[0]["error"] and "other copy failed too" in summary.errors[0]["error"]
    lost = summary.errors[0]["path"]
    restored = _digests(target / str(src).lstrip("/"))
    assert {k: v for k, v in _digests(src).items() if not lost.endswith(k)} == restored


def test_a_missing_pack_is_restored_from_other_copies_reading_each_header_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pack holding the first copy of every data blob is gone: each blob comes from its other copy, and the
    headers of the packs holding those are read once each, not once per blob."""
    # one data pack, then one more for the second copies
    src, repo, snap = _backed_up_twice(tmp_path, seed=13, count=8, pack_size=16 * 1024 * 1024)
    opened = reopen(repo)
    data = [(pid, e) for pid, e in opened.index.entries() if e.type == BlobType.DATA]
    first_packs = {opened.index.lookup(e.id)[0] for _pid, e in data}  # type: ignore[index]
    assert len(first_packs) == 1
    del memory_objects(repo)[layout.pack_name(first_packs.pop())]

    reads: list[bytes] = []
    real = Repository.read_pack_header

    def counted(self: Repository, pack_id: bytes, size: int | None = None) -> list[BlobEntry]:
        reads.append(pack_id)
        return real(self, pack_id, size)

    monkeypatch.setattr(Repository, "read_pack_header", counted)
    target = tmp_path / "target"
    # in this process, where the reads are counted (a child's reads would be counted in its copy)
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2, processes=0)).run()

    assert summary.errors == []
    assert _digests(target / str(src).lstrip("/")) == _digests(src)
    assert len(summary.warnings) == len({e.id for _p, e in data})
    assert all("is missing" in w["warning"] for w in summary.warnings)
    assert len(reads) == len(set(reads)) >= 1
