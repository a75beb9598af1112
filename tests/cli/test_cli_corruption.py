"""Damaged packs: restore and dump fail, name the damaged object, and never leave a file with wrong bytes."""

from __future__ import annotations

import os
from pathlib import Path

from cli_harness import PASSWORD, Cli
from cli_trees import MiB, pack_files, random_bytes, read_bytes, restored, write_file

from sauvegarde.engine.prune import run_prune
from sauvegarde.repository import Repository, layout
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.layout import id_from_name
from sauvegarde.storage import open_storage


def _blob_ids_in_pack(repo: Path, pack: Path) -> set[str]:
    r = Repository.open(open_storage(str(repo)), PASSWORD.encode(), load_index=False)
    try:
        return {e.id.hex() for e in r.read_pack_header(id_from_name(pack.name))}
    finally:
        r.close()


def _store_every_blob_again(repo: Path) -> list[BlobEntry]:
    """Write every blob of the repository a second time, as a second session that did not load the index does;
    the entries of the first copies."""
    first = Repository.open(open_storage(str(repo)), PASSWORD.encode())
    again = Repository.open(open_storage(str(repo)), PASSWORD.encode(), load_index=False)
    try:
        entries = [entry for _pid, entry in first.index.entries()]
        for entry in entries:
            again.save_blob(BlobType(entry.type), first.load_blob(entry.id))
        again.flush()
    finally:
        first.close()
        again.close()
    return entries


def _flip_byte(path: Path, offset: int) -> None:
    path.chmod(0o600)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


def test_damaged_pack_fails_restore_and_dump_naming_the_blob(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    victim = random_bytes(2 * MiB, seed=41)
    write_file(src / "victim.bin", victim)
    cli.run("backup", src)
    # the data pack is the large one (trees go to their own, small pack)
    pack = max(pack_files(repo), key=lambda p: p.stat().st_size)
    assert pack.stat().st_size > MiB
    blob_ids = _blob_ids_in_pack(repo, pack)
    _flip_byte(pack, pack.stat().st_size // 3)  # well inside the blobs, before the header at the end

    res = cli.run("dump", "latest", src / "victim.bin", check_exit=None)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert any(bid in err for bid in blob_ids), err
    assert res.stdout != victim

    target = tmp_path / "target"
    res = cli.run("restore", "latest", "--target", target, check_exit=None)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert any(bid in err for bid in blob_ids), err
    assert "victim.bin" in err
    out = restored(target, src / "victim.bin")
    assert not os.path.lexists(out), "a file with wrong content was left behind"

    # with --verify too, and restoring over an older good copy must not keep a half-written file either
    write_file(out, b"stale content")
    res = cli.run("restore", "latest", "--target", target, "--verify", check_exit=None)
    assert res.returncode != 0
    assert not os.path.lexists(out)


def test_damage_to_one_file_does_not_stop_the_others(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_file(src / "good.txt", b"good\n")
    cli.run("backup", src)
    good_packs = set(pack_files(repo))
    write_file(src / "bad.bin", random_bytes(MiB, seed=42))
    cli.run("backup", src)
    pack = max(set(pack_files(repo)) - good_packs, key=lambda p: p.stat().st_size)
    _flip_byte(pack, 1000)
    target = tmp_path / "target"
    res = cli.run("restore", "latest", "--target", target, check_exit=1)
    assert "bad.bin" in res.stderr.decode()
    assert read_bytes(restored(target, src / "good.txt")) == b"good\n"
    assert not os.path.lexists(restored(target, src / "bad.bin"))


def test_a_blob_stored_twice_survives_damage_to_one_copy(cli: Cli, repo: Path, tmp_path: Path) -> None:
    """Every blob written a second time (as a second session that did not load the index does), then the pack the
    index names first damaged: restore and dump give the exact bytes, and restore warns and exits 0."""
    src = tmp_path / "src"
    src.mkdir()
    victim = random_bytes(2 * MiB, seed=43)
    write_file(src / "victim.bin", victim)
    cli.run("backup", src)
    entries = _store_every_blob_again(repo)
    # the copy a fresh open looks up first (the order of copies follows the listing of the index objects)
    fresh = Repository.open(open_storage(str(repo)), PASSWORD.encode())
    try:
        assert all(len(fresh.index.copies(e.id)) == 2 for e in entries)
        looked_up = {fresh.index.lookup(e.id)[0] for e in entries if e.type == BlobType.DATA}  # type: ignore[index]
    finally:
        fresh.close()
    (data_pack,) = looked_up
    _flip_byte(repo / layout.pack_name(data_pack), 100)  # inside the first blob

    assert cli.run("dump", "latest", src / "victim.bin").stdout == victim
    target = tmp_path / "target"
    res = cli.run("restore", "latest", "--target", target)
    assert "restored from another copy" in res.stderr.decode()
    assert read_bytes(restored(target, src / "victim.bin")) == victim


def test_prune_keeps_the_good_copy_when_the_one_it_would_keep_is_damaged(cli: Cli, repo: Path, tmp_path: Path) -> None:
    """Every blob stored twice, then the data copy prune's plan would keep damaged: prune reads it back, keeps the
    pack with the other copy instead and says so (stderr and --json), and the file still restores exactly."""
    src = tmp_path / "src"
    src.mkdir()
    victim = random_bytes(2 * MiB, seed=44)
    write_file(src / "victim.bin", victim)
    cli.run("backup", src)
    _store_every_blob_again(repo)
    r = Repository.open(open_storage(str(repo)), PASSWORD.encode())
    try:
        plan = run_prune(r, 0.0, dry_run=True).plan
    finally:
        r.close()
    kept = next(d for d in plan.duplicates if d.entry.type == BlobType.DATA)
    _flip_byte(repo / layout.pack_name(kept.pack_id), kept.entry.offset + kept.entry.length // 2)

    res = cli.run("prune", "--max-unused", "0%")
    err = res.stderr.decode()
    assert kept.entry.id.hex() in err and "damaged" in err and kept.pack_id.hex() in err
    assert all((repo / layout.pack_name(p)).exists() for p in kept.others)
    target = tmp_path / "target"
    cli.run("restore", "latest", "--target", target)
    assert read_bytes(restored(target, src / "victim.bin")) == victim
    # the next prune finds the same damage and keeps the same pack (--json lists the warning)
    again_json = cli.json("prune", "--max-unused", "0%")
    assert any(kept.entry.id.hex() in w for w in again_json["warnings"])
