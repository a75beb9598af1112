"""Backup then restore reproduces a tree exactly: types, content, modes, owners, times, links, xattrs, ACLs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cli_harness import Cli
from cli_trees import MiB, assert_same_tree, random_bytes, restored, scan, write_file

IS_ROOT = os.geteuid() == 0
BASE_NS = 1_600_000_000_123_456_789
SPARSE_SIZE = 64 * MiB
SPARSE_WRITES = (0, 5 * MiB + 12345, 40 * MiB, SPARSE_SIZE - 4096)


def _acl_supported(path: Path) -> bool:
    if shutil.which("setfacl") is None:
        return False
    probe = path / "acl-probe"
    probe.touch()
    try:
        res = subprocess.run(["setfacl", "-m", "u:1234:r", str(probe)], capture_output=True, check=False)
        return res.returncode == 0
    finally:
        probe.unlink()


def build_tree(root: Path) -> dict[str, bool]:
    """Every kind of entry and metadata the format promises to keep. Returns which optional parts were made."""
    made = {"chardev": False, "chown": False, "acl": False, "xattr": False}
    r = os.fsencode(root)
    root.mkdir()
    j = os.path.join

    # regular files
    write_file(j(r, b"empty"), b"")
    write_file(j(r, b"small.txt"), b"hello, world\n")
    write_file(j(r, b"big.bin"), random_bytes(3 * MiB + 17, seed=1))
    # directories: empty, nested
    os.makedirs(j(r, b"empty-dir"))
    os.makedirs(j(r, b"a/b/c/d"))
    write_file(j(r, b"a/b/c/d/deep.txt"), b"deep\n" * 1000)
    write_file(j(r, b"a/one.txt"), b"one\n")
    # symlinks: absolute, relative, dangling, to a directory
    os.symlink(j(r, b"small.txt"), j(r, b"abs-link"))
    os.symlink(b"../small.txt", j(r, b"a/rel-link"))
    os.symlink(b"does/not/exist", j(r, b"dangling-link"))
    os.symlink(b"a/b", j(r, b"dir-link"))
    # hardlinks: a group of three, across directories
    write_file(j(r, b"hard1"), random_bytes(100_000, seed=2))
    os.link(j(r, b"hard1"), j(r, b"hard2"))
    os.link(j(r, b"hard1"), j(r, b"a/hard3"))
    # sparse file: 64 MiB with a few written blocks
    with open(j(r, b"sparse.img"), "wb") as f:
        f.truncate(SPARSE_SIZE)
        for i, off in enumerate(SPARSE_WRITES):
            f.seek(off)
            f.write(random_bytes(4096, seed=10 + i))
    # special files
    os.mkfifo(j(r, b"fifo"), 0o640)
    if IS_ROOT:
        os.mknod(j(r, b"null-dev"), 0o620 | stat.S_IFCHR, os.makedev(1, 3))
        made["chardev"] = True
    # names that are not UTF-8
    write_file(j(r, b"caf\xe9"), b"latin-1 name\n")
    os.mkdir(j(r, b"r\xe9pertoire"))
    write_file(j(r, b"r\xe9pertoire/\xff\xfe.bin"), random_bytes(5000, seed=3))
    # owner (root only), then special mode bits (chown clears setuid)
    write_file(j(r, b"owned"), b"owned by 1234:2345\n")
    write_file(j(r, b"setuid"), b"#!/bin/sh\n")
    write_file(j(r, b"setgid"), b"#!/bin/sh\n")
    os.mkdir(j(r, b"sticky"))
    os.mkdir(j(r, b"setgid-dir"))
    if IS_ROOT:
        os.chown(j(r, b"owned"), 1234, 2345)
        os.chown(j(r, b"setuid"), 1234, 2345)
        os.lchown(j(r, b"abs-link"), 1234, 2345)
        os.chown(j(r, b"a/b"), 1234, 2345)
        made["chown"] = True
    os.chmod(j(r, b"owned"), 0o640)
    os.chmod(j(r, b"setuid"), 0o4755)
    os.chmod(j(r, b"setgid"), 0o2711)
    os.chmod(j(r, b"sticky"), 0o1777)
    os.chmod(j(r, b"setgid-dir"), 0o2750)
    os.chmod(j(r, b"empty"), 0o600)
    # extended attributes and ACLs
    try:
        os.setxattr(j(r, b"small.txt"), "user.foo", b"bar")
        os.setxattr(j(r, b"a"), "user.dir-attr", b"\x00\x01binary\xff")
        made["xattr"] = True
    except OSError:
        pass
    if _acl_supported(root):
        write_file(j(r, b"acl-file"), b"acl\n")
        os.mkdir(j(r, b"acl-dir"))
        subprocess.run(["setfacl", "-m", "u:1234:rwx", j(r, b"acl-file")], check=True)
        subprocess.run(["setfacl", "-m", "u:1234:rx", "-d", "-m", "g:2345:rwx", j(r, b"acl-dir")], check=True)
        made["acl"] = True
    # nanosecond times on everything, directories last and deepest first (creating entries changes them)
    everything: list[bytes] = []
    for dirpath, dirs, files in os.walk(r):
        everything.extend(os.path.join(dirpath, n) for n in files + dirs)
    # files and links first, then directories deepest first
    everything.sort(key=lambda p: (os.path.isdir(p) and not os.path.islink(p), -p.count(b"/"), p))
    for i, p in enumerate(everything):
        ns = BASE_NS + i * 1_000_000_007 + i
        os.utime(p, ns=(ns, ns), follow_symlinks=False)
    os.utime(r, ns=(BASE_NS - 5, BASE_NS - 5))
    return made


def test_restore_reproduces_every_kind_of_entry(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    made = build_tree(src)
    before = scan(src)
    # the tree is what the test means it to be
    assert before.entries[b"small.txt"].mtime_ns != before.entries[b"big.bin"].mtime_ns
    assert before.entries[b"a/b/c"].mtime_ns % 1000 != 0
    assert {frozenset({b"hard1", b"hard2", b"a/hard3"})} == before.hardlinks
    assert before.blocks[b"sparse.img"] * 512 < MiB

    cli.backup_json(src)
    target = tmp_path / "target"
    res = cli.run("restore", "latest", "--target", target)
    assert res.stderr == b"", res.stderr.decode(errors="replace")

    after = assert_same_tree(src, restored(target, src))
    # the sparse file stays sparse: a few blocks allocated, like the original, not 64 MiB
    assert after.blocks[b"sparse.img"] * 512 <= 4 * before.blocks[b"sparse.img"] * 512 + 4 * 128 * 1024
    if made["chardev"]:
        assert after.entries[b"null-dev"].rdev == os.makedev(1, 3)
    if made["chown"]:
        assert (after.entries[b"owned"].uid, after.entries[b"owned"].gid) == (1234, 2345)
    if made["acl"]:
        names = dict(after.entries[b"acl-file"].xattrs)
        assert b"system.posix_acl_access" in names
        assert b"system.posix_acl_default" in dict(after.entries[b"acl-dir"].xattrs)
        getfacl = subprocess.run(
            ["getfacl", "-cp", restored(target, src / "acl-file")], capture_output=True, check=True
        )
        assert b"user:1234:rwx" in getfacl.stdout
    if made["xattr"]:
        assert dict(after.entries[b"small.txt"].xattrs)[b"user.foo"] == b"bar"
    skipped = [k for k, v in made.items() if not v]
    if skipped:
        pytest.skip(f"restore checked, but without {', '.join(skipped)} (needs root or file system support)")


def test_restore_over_an_existing_copy_gives_the_same_tree(cli: Cli, repo: Path, tmp_path: Path) -> None:
    """Restoring twice into the same target (files exist, dirs exist, links exist) still gives an exact copy."""
    src = tmp_path / "src"
    build_tree(src)
    cli.run("backup", src)
    target = tmp_path / "target"
    cli.run("restore", "latest", "--target", target)
    # damage the first copy a little: the second restore must repair it
    out = restored(target, src)
    write_file(os.path.join(out, b"small.txt"), b"changed")
    os.unlink(os.path.join(out, b"hard2"))
    os.symlink(b"elsewhere", os.path.join(out, b"hard2"))
    cli.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(src, out)
