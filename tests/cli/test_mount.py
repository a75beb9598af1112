"""``sauvegarde mount``: the FUSE operations on their own, then the real command mounted, read and unmounted."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import Cli
from cli_trees import MiB, random_bytes, write_file

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.browse import Browser
from sauvegarde.mount.operations import SnapshotFS
from sauvegarde.repository.testing import memory_repository

needs_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is absent: FUSE mounts impossible")
MOUNT_TIMEOUT = 20.0


def make_tree(root: Path) -> dict[str, bytes]:
    """A small tree with a multi-MiB file, a symlink, a hardlink, odd modes and (if supported) an xattr."""
    (root / "sub").mkdir(parents=True)
    files = {"big.bin": random_bytes(5 * MiB + 12345, seed=11), "sub/small.txt": b"hello mount\n", "empty": b""}
    for rel, data in files.items():
        write_file(root / rel, data)
    os.symlink("sub/small.txt", root / "link")
    os.link(root / "sub" / "small.txt", root / "hard.txt")
    os.chmod(root / "big.bin", 0o640)
    os.utime(root / "sub" / "small.txt", ns=(1_700_000_000_123_456_789, 1_600_000_000_987_654_321))
    with contextlib.suppress(OSError):  # the file system of tmp_path may have no user xattrs
        os.setxattr(root / "sub" / "small.txt", "user.colour", b"blue")
    return files


# ---- the operations, without FUSE -------------------------------------------------------------------------------


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[tuple[SnapshotFS, str]]:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    write_file(root / "sub" / "f.txt", b"0123456789" * 1000)
    os.symlink("sub/f.txt", root / "ln")
    repo = memory_repository()
    snap = Backup(repo, BackupOptions(paths=[str(root)], hostname="h", workers=2)).run()
    yield SnapshotFS(Browser(repo)), f"/ids/{snap.short_id}{root}"
    repo.close()


def test_operations_stat_list_read(ops: tuple[SnapshotFS, str]) -> None:
    fs, top = ops
    assert fs.use_ns
    assert [e if isinstance(e, str) else e[0] for e in fs.readdir("/", 0)] == [
        ".",
        "..",
        "hosts",
        "ids",
        "snapshots",
        "tags",
    ]
    entries = fs.readdir(top, 0)
    assert [e if isinstance(e, str) else e[0] for e in entries] == [".", "..", "ln", "sub"]
    attrs = fs.getattr(top + "/sub/f.txt")
    assert attrs["st_size"] == 10_000 and attrs["st_mode"] & 0o170000 == 0o100000
    assert fs.getattr(top + "/ln")["st_size"] == len("sub/f.txt")
    assert fs.readlink(top + "/ln") == "sub/f.txt"
    fh = fs.open(top + "/sub/f.txt", os.O_RDONLY)
    assert fs.read(top + "/sub/f.txt", 15, 4995, fh) == b"567890123456789"
    assert fs.getattr(top + "/sub/f.txt", fh)["st_size"] == 10_000
    fs.release(top + "/sub/f.txt", fh)
    with pytest.raises(OSError) as bad:
        fs.read(top + "/sub/f.txt", 1, 0, fh)
    assert bad.value.errno == errno.EBADF


def test_operations_errors(ops: tuple[SnapshotFS, str]) -> None:
    fs, top = ops
    cases = [
        (lambda: fs.getattr(top + "/missing"), errno.ENOENT),
        (lambda: fs.open(top + "/sub/f.txt", os.O_WRONLY), errno.EROFS),
        (lambda: fs.open(top + "/sub/f.txt", os.O_RDWR), errno.EROFS),
        (lambda: fs.getxattr(top + "/sub/f.txt", "user.none"), errno.ENODATA),
        (lambda: fs.readdir(top + "/sub/f.txt", 0), errno.ENOTDIR),
        (lambda: fs.readlink(top + "/sub"), errno.EINVAL),
    ]
    for call, code in cases:
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == code
    assert fs.listxattr(top + "/sub/f.txt") == []


# ---- the real command ----------------------------------------------------------------------------------------


def test_mount_without_fuse_library_is_one_line_error(cli: Cli, repo: Path, tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    res = cli.run("mount", tmp_path / "mnt", check_exit=1, env={"FUSE_LIBRARY_NAME": "no-such-fuse-library"})
    assert len(res.stderr.splitlines()) == 1 and b"fuse3" in res.stderr
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "mfusepy.py").write_text("raise ImportError('simulated: not installed')\n")
    res = cli.run("mount", tmp_path / "mnt", check_exit=1, env={"PYTHONPATH": str(shadow)})
    assert len(res.stderr.splitlines()) == 1 and b"sauvegarde[mount]" in res.stderr


def _start(cli: Cli, mnt: Path, log: Path) -> subprocess.Popen[bytes]:
    mnt.mkdir()
    with open(log, "wb") as out:
        proc = cli.popen("mount", mnt, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not os.path.ismount(mnt):
        if proc.poll() is not None:
            pytest.fail(f"mount exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"not mounted after {MOUNT_TIMEOUT} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return proc


def _cleanup(proc: subprocess.Popen[bytes], mnt: Path) -> None:
    if os.path.ismount(mnt):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)
    if proc.poll() is None:
        proc.kill()  # our own child, by its PID
    proc.wait(timeout=10)


@needs_fuse
def test_mount_read_and_unmount(cli: Cli, repo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = make_tree(data)
    cli.run("backup", "--tag", "nightly", data)
    mnt = tmp_path / "mnt"
    log = tmp_path / "mount.log"
    proc = _start(cli, mnt, log)
    try:
        assert sorted(os.listdir(mnt)) == ["hosts", "ids", "snapshots", "tags"]
        times = sorted(os.listdir(mnt / "snapshots"))
        assert len(times) == 2 and times[1] == "latest"
        assert os.readlink(mnt / "snapshots" / "latest") == times[0]
        assert sorted(os.listdir(mnt / "hosts" / socket.gethostname())) == [times[0], "latest"]
        assert sorted(os.listdir(mnt / "tags" / "nightly")) == [times[0], "latest"]
        (short_id,) = os.listdir(mnt / "ids")
        snap_dirs = [mnt / "snapshots" / "latest", mnt / "ids" / short_id, mnt / "tags" / "nightly" / times[0]]
        for snap_dir in snap_dirs:
            top = Path(str(snap_dir) + str(data))
            assert sorted(os.listdir(top)) == ["big.bin", "empty", "hard.txt", "link", "sub"]

        top = Path(str(mnt / "snapshots" / times[0]) + str(data))
        big = files["big.bin"]
        assert (top / "big.bin").read_bytes() == big  # several ~1 MiB chunks
        with open(top / "big.bin", "rb") as f:
            assert os.pread(f.fileno(), 100_000, 1_500_003) == big[1_500_003:1_600_003]
            assert os.pread(f.fileno(), 3 * MiB, 777_777) == big[777_777 : 777_777 + 3 * MiB]
            assert os.pread(f.fileno(), 100, len(big) - 10) == big[-10:]
        assert (top / "sub" / "small.txt").read_bytes() == b"hello mount\n"
        assert (top / "empty").read_bytes() == b""
        assert os.readlink(top / "link") == "sub/small.txt"
        assert (top / "link").read_bytes() == b"hello mount\n"  # the kernel follows it inside the mount

        for rel in ("big.bin", "sub/small.txt", "sub", "link", "hard.txt"):
            want, got = os.lstat(data / rel), os.lstat(top / rel)
            assert (got.st_mode, got.st_uid, got.st_gid) == (want.st_mode, want.st_uid, want.st_gid), rel
            assert got.st_mtime_ns == want.st_mtime_ns, rel
            if not os.path.isdir(data / rel):
                assert got.st_size == want.st_size, rel
        assert os.stat(top / "hard.txt").st_nlink == 2
        assert os.stat(top / "big.bin").st_mode & 0o777 == 0o640
        xattrs = os.listxattr(data / "sub" / "small.txt")
        assert os.listxattr(top / "sub" / "small.txt") == xattrs
        if "user.colour" in xattrs:
            assert os.getxattr(top / "sub" / "small.txt", "user.colour") == b"blue"

        with pytest.raises(OSError) as ro, open(top / "new-file", "wb"):
            pass
        assert ro.value.errno in (errno.EROFS, errno.EACCES)
        with pytest.raises(FileNotFoundError):
            os.stat(top / "missing")

        subprocess.run(["fusermount3", "-u", str(mnt)], check=True, capture_output=True, timeout=20)
        assert proc.wait(timeout=20) == 0, log.read_text(errors="replace")
        assert not os.path.ismount(mnt)
        assert "unmounted" in log.read_text()
        assert not list((repo / "locks").iterdir())  # the shared lock is released
    finally:
        _cleanup(proc, mnt)


@needs_fuse
def test_mount_stops_cleanly_on_ctrl_c(cli: Cli, repo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_file(data / "f", b"x")
    cli.run("backup", data)
    mnt = tmp_path / "mnt"
    log = tmp_path / "mount.log"
    proc = _start(cli, mnt, log)
    try:
        assert len(list((repo / "locks").iterdir())) == 1  # holds a shared lock while mounted
        assert (Path(str(mnt / "snapshots" / "latest") + str(data)) / "f").read_bytes() == b"x"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, log.read_text(errors="replace")
        assert not os.path.ismount(mnt)
        assert not list((repo / "locks").iterdir())
    finally:
        _cleanup(proc, mnt)
