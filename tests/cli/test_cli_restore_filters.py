"""restore --include, --exclude, --restore-path, the --path/--host/--tag snapshot filters, and --verify."""

from __future__ import annotations

import io
import os
from pathlib import Path

from cli_harness import Cli
from cli_trees import assert_same_tree, random_bytes, restored, write_file


def _files_below(root: bytes) -> set[bytes]:
    out = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def _photo() -> bytes:
    """A real JPEG of about 1 MiB (seeded noise): the ransomware guard takes random bytes named .jpg, framed or
    not, for an encrypted photo, as it should."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (640, 640), random_bytes(640 * 640 * 3, seed=51)).save(out, "JPEG", quality=95)
    return out.getvalue()


def _tree(src: Path) -> None:
    for d in ("docs/old", "photos", "cache"):
        (src / d).mkdir(parents=True)
    write_file(src / "docs" / "a.txt", b"a\n")
    write_file(src / "docs" / "b.tmp", b"tmp\n")
    write_file(src / "docs" / "old" / "c.txt", b"c\n")
    write_file(src / "photos" / "p.jpg", _photo())
    write_file(src / "cache" / "x.tmp", b"x\n")
    write_file(src / "top.txt", b"top\n")


def test_include_and_exclude(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    cli.run("backup", src)

    t1 = tmp_path / "t1"
    cli.run("restore", "latest", "--target", t1, "--include", f"{src}/docs/**")
    assert _files_below(restored(t1, src)) == {b"docs/a.txt", b"docs/b.tmp", b"docs/old/c.txt"}

    t2 = tmp_path / "t2"
    cli.run("restore", "latest", "--target", t2, "--exclude", "*.tmp", "--exclude", f"{src}/docs/old")
    assert _files_below(restored(t2, src)) == {b"docs/a.txt", b"photos/p.jpg", b"top.txt"}
    assert os.path.isdir(restored(t2, src / "cache"))  # the directory is kept, only its .tmp file excluded
    assert not os.path.lexists(restored(t2, src / "docs" / "old"))

    t3 = tmp_path / "t3"
    cli.run("restore", "latest", "--target", t3, "--include", "*.txt", "--exclude", f"{src}/docs")
    assert _files_below(restored(t3, src)) == {b"top.txt"}

    # restored files carry their metadata even when only some of a directory is restored
    assert os.stat(restored(t1, src / "docs" / "a.txt")).st_mtime_ns == os.stat(src / "docs" / "a.txt").st_mtime_ns


def test_restore_path_and_snapshot_filters(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    other = tmp_path / "other"
    other.mkdir()
    write_file(other / "o.txt", b"other\n")
    cli.run("backup", src, "--tag", "main", "--host", "alpha")
    cli.run("backup", other, "--tag", "side", "--host", "beta")

    # --restore-path: one subtree of the snapshot
    t1 = tmp_path / "t1"
    cli.run("restore", "latest", "--path", str(src), "--target", t1, "--restore-path", str(src / "docs"))
    assert _files_below(restored(t1, src)) == {b"docs/a.txt", b"docs/b.tmp", b"docs/old/c.txt"}
    assert_same_tree(src / "docs", restored(t1, src / "docs"))

    # --path, --host and --tag choose which snapshot "latest" means
    for flt in (("--path", str(src)), ("--host", "alpha"), ("--tag", "main")):
        t = tmp_path / f"t-{flt[0].strip('-')}"
        cli.run("restore", "latest", *flt, "--target", t)
        assert_same_tree(src, restored(t, src))
        assert not os.path.lexists(restored(t, other))
    t = tmp_path / "t-latest"
    cli.run("restore", "latest", "--target", t)
    assert_same_tree(other, restored(t, other))
    assert not os.path.lexists(restored(t, src))
    res = cli.run("restore", "latest", "--path", "/nowhere", "--target", tmp_path / "none", check_exit=1)
    assert "no snapshot" in res.stderr.decode()


def test_verify_reads_back_what_was_restored(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    cli.run("backup", src)
    doc = cli.json("restore", "latest", "--target", tmp_path / "t", "--verify")
    assert doc["verified"] == doc["files"] == 6
    assert doc["errors"] == []
    text = cli.run("restore", "latest", "--target", tmp_path / "t2", "--verify").stdout.decode()
    assert "verified 6 files" in text
