"""``sauvegarde copy`` end to end: back up into one repository, copy into another with its own password, restore."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cli_harness import CHEAP_KDF, Cli
from cli_trees import MiB, assert_same_tree, random_bytes, restored, write_file

SRC_PASSWORD = "the source has another password"
COPIED = re.compile(r"^snapshot ([0-9a-f]{8}) of \S+ \S+ copied as ([0-9a-f]{8}) \((\d+) blobs, [\d.]+ \w+ added\)$")
SKIPPED = re.compile(r"^snapshot ([0-9a-f]{8}) of \S+ \S+ skipped \(already in destination as ([0-9a-f]{8})\)$")


def make_source(cli: Cli, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A second repository with its own password; returns it and the environment that addresses it."""
    src = tmp_path / "src-repo"
    env = {"SAUVEGARDE_REPOSITORY": str(src), "SAUVEGARDE_PASSWORD": SRC_PASSWORD}
    cli.run("init", *CHEAP_KDF, env=env)
    return src, env


def build_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    big = random_bytes(3 * MiB, seed=7)  # several chunks
    write_file(root / "big.bin", big)
    write_file(root / "sub" / "deeper" / "same-as-big.bin", big)
    write_file(root / "sub" / "note.txt", b"remember the milk\n")
    write_file(root / "empty", b"")
    os.symlink("sub/note.txt", root / "link")
    os.chmod(root / "sub" / "note.txt", 0o600)
    os.utime(root / "big.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))


def test_copy_then_restore_from_destination(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src, src_env = make_source(cli, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    build_tree(data)
    first = cli.backup_json(str(data), "--tag", "nightly", env=src_env)
    write_file(data / "later.txt", b"added after the first backup\n")
    second = cli.backup_json(str(data), env=src_env)

    res = cli.run("copy", "--from-repo", str(src), env={"SAUVEGARDE_FROM_PASSWORD": SRC_PASSWORD})
    lines = res.stdout.decode().splitlines()
    matches = [COPIED.match(line) for line in lines]
    assert len(lines) == 2 and all(matches), lines
    assert [m[1] for m in matches if m] == [first["snapshot_id"][:8], second["snapshot_id"][:8]]

    dest_snaps = cli.json("snapshots")
    assert len(dest_snaps) == 2
    assert dest_snaps[0]["tags"] == ["nightly"]
    src_snaps = cli.json("snapshots", env=src_env)
    for s, d in zip(src_snaps, dest_snaps, strict=True):
        for key in ("time", "hostname", "paths", "username", "tags", "summary"):
            assert d[key] == s[key], key
        assert d["id"] != s["id"] and d["tree"] != s["tree"]
        assert d["original"] == s["id"] and s["original"] is None

    target = tmp_path / "restore"
    cli.run("restore", "latest", "--target", str(target))
    assert_same_tree(data, restored(target, data))

    # running it again copies nothing
    again = cli.json("copy", "--from-repo", str(src), env={"SAUVEGARDE_FROM_PASSWORD": SRC_PASSWORD})
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert [r["source_id"] for r in again] == [first["snapshot_id"], second["snapshot_id"]]
    assert {r["dest_id"] for r in again} == {s["id"] for s in dest_snaps}
    assert len(cli.json("snapshots")) == 2
    human = cli.run("copy", "--from-repo", str(src), env={"SAUVEGARDE_FROM_PASSWORD": SRC_PASSWORD})
    assert all(SKIPPED.match(line) for line in human.stdout.decode().splitlines())


def test_copy_selects_snapshots_and_reads_password_file(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src, src_env = make_source(cli, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    write_file(data / "a", b"first\n")
    tagged = cli.backup_json(str(data), "--tag", "keep", env=src_env)
    write_file(data / "a", b"second\n")
    cli.backup_json(str(data), env=src_env)
    write_file(data / "a", b"third\n")
    third = cli.backup_json(str(data), env=src_env)
    pw_file = tmp_path / "src.pw"
    pw_file.write_text(SRC_PASSWORD + "\n")
    env = {"SAUVEGARDE_FROM_REPOSITORY": str(src)}

    by_tag = cli.json("copy", "--from-password-file", str(pw_file), "--tag", "keep", env=env)
    assert [(r["source_id"], r["status"]) for r in by_tag] == [(tagged["snapshot_id"], "copied")]
    by_id = cli.json("copy", "--from-password-file", str(pw_file), third["snapshot_id"][:10], env=env)
    assert [(r["source_id"], r["status"]) for r in by_id] == [(third["snapshot_id"], "copied")]
    assert len(cli.json("snapshots")) == 2

    out = tmp_path / "a-copy"
    dumped = cli.run("dump", "latest", str(data / "a"))
    assert dumped.stdout == b"third\n"
    cli.run("restore", by_tag[0]["dest_id"][:8], "--target", str(out))
    assert Path(os.fsdecode(restored(out, data / "a"))).read_bytes() == b"first\n"


def test_wrong_source_password_exits_12(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src, src_env = make_source(cli, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    write_file(data / "a", b"x")
    cli.backup_json(str(data), env=src_env)

    res = cli.run("copy", "--from-repo", str(src), env={"SAUVEGARDE_FROM_PASSWORD": "not it"}, check_exit=12)
    assert b"source repository" in res.stderr
    res = cli.run("copy", "--from-repo", str(src), env={"SAUVEGARDE_FROM_PASSWORD": None}, check_exit=None)
    assert res.returncode != 0 and b"SAUVEGARDE_FROM_PASSWORD" in res.stderr
    res = cli.run(
        "copy",
        "--from-repo",
        str(src),
        env={"SAUVEGARDE_FROM_PASSWORD": SRC_PASSWORD, "SAUVEGARDE_PASSWORD": "wrong"},
        check_exit=12,
    )
    assert b"destination repository" in res.stderr
    assert cli.json("snapshots", env={}) == []
