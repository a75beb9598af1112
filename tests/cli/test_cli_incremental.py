"""Incremental backups read only what changed; identical content is stored once."""

from __future__ import annotations

import os
from pathlib import Path

from cli_harness import Cli
from cli_trees import MiB, assert_same_tree, dir_size, random_bytes, read_bytes, restored, write_file

N_SMALL = 30


def _tree(root: Path) -> int:
    (root / "d1" / "d2").mkdir(parents=True)
    for i in range(N_SMALL):
        write_file(root / ("d1" if i % 2 else "d1/d2") / f"f{i:02}.txt", f"file {i}\n".encode() * (i + 1))
    write_file(root / "big.bin", random_bytes(3 * MiB, seed=21))
    write_file(root / "empty", b"")
    return N_SMALL + 2


def test_unchanged_tree_is_not_read_again(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    count = _tree(src)
    first = cli.backup_json(src)
    assert (first["files_new"], first["files_changed"], first["files_unmodified"]) == (count, 0, 0)
    assert first["bytes_added"] > 3 * MiB

    second = cli.backup_json(src)
    assert second["parent"] == first["snapshot_id"]
    assert (second["files_new"], second["files_changed"], second["files_unmodified"]) == (0, 0, count)
    assert second["bytes_added"] < 16 * 1024

    # change one file (same size, new content and mtime)
    big = src / "big.bin"
    data = bytearray(big.read_bytes())
    data[MiB] ^= 0xFF
    big.write_bytes(bytes(data))
    third = cli.backup_json(src)
    assert (third["files_new"], third["files_changed"], third["files_unmodified"]) == (0, 1, count - 1)
    # only the chunk around the changed byte is new, not the whole 3 MiB file
    assert third["bytes_added"] < 2.5 * MiB
    # a new file is new, the others unmodified
    write_file(src / "d1" / "added.txt", b"added\n")
    fourth = cli.backup_json(src)
    assert (fourth["files_new"], fourth["files_changed"], fourth["files_unmodified"]) == (1, 0, count)

    cli.run("restore", "latest", "--target", tmp_path / "t")
    assert_same_tree(src, restored(tmp_path / "t", src))
    # the first snapshot still restores the old content
    cli.run("restore", first["snapshot_id"], "--target", tmp_path / "t1", "--restore-path", str(big))
    assert read_bytes(restored(tmp_path / "t1", big)) == random_bytes(3 * MiB, seed=21)


def test_force_rereads_everything_but_adds_nothing(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    count = _tree(src)
    cli.backup_json(src)
    forced = cli.backup_json(src, "--force")
    assert forced["files_unmodified"] == 0
    assert forced["files_new"] + forced["files_changed"] == count
    assert forced["bytes_processed"] >= 3 * MiB
    assert forced["bytes_added"] < 16 * 1024


def test_identical_content_is_stored_once(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "copy2").mkdir(parents=True)
    data = random_bytes(5 * MiB, seed=31)
    write_file(src / "copy1.bin", data)
    write_file(src / "copy2" / "same.bin", data)
    before = dir_size(repo)
    summary = cli.backup_json(src)
    grown = dir_size(repo) - before
    assert summary["bytes_processed"] == 10 * MiB
    # random data does not compress: one copy is 5 MiB plus overhead, two would be 10
    assert 5 * MiB <= grown < 6 * MiB, grown
    assert summary["bytes_added"] < 6 * MiB
    # and across snapshots and paths: a third copy elsewhere adds nothing
    other = tmp_path / "other"
    other.mkdir()
    write_file(other / "third.bin", data)
    before = dir_size(repo)
    third = cli.backup_json(other)
    assert third["bytes_added"] < 64 * 1024
    assert dir_size(repo) - before < 64 * 1024
    out = cli.run("dump", "latest", os.path.join(other, "third.bin")).stdout
    assert out == data
