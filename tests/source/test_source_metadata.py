"""Tree nodes from lstat results: types, metadata, sparse files and extended attributes."""

from __future__ import annotations

import errno
import os
import pwd
import socket
import stat
from pathlib import Path

import pytest

from sauvegarde.repository.tree import CHARDEV, DIR, FIFO, FILE, SOCKET, SYMLINK, Node
from sauvegarde.source import node_from_stat
from sauvegarde.source.metadata import gid_for, group_name, node_type, read_xattrs, uid_for, user_name


def _node(path: Path) -> Node:
    p = os.fsencode(path)
    return node_from_stat(os.path.basename(p), p, os.lstat(p))


def _set_xattr(path: Path, name: str, value: bytes, follow: bool = True) -> None:
    try:
        os.setxattr(path, name, value, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP, errno.EACCES):
            pytest.skip(f"file system refuses {name} xattrs: {exc.strerror}")
        raise


def test_regular_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_bytes(b"x" * 1000)
    os.chmod(f, 0o640)
    os.utime(f, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    st = os.lstat(f)
    node = _node(f)
    assert node.name == b"file.txt"
    assert node.type == FILE
    assert node.size == 1000
    assert node.mode == 0o640
    assert (node.uid, node.gid) == (st.st_uid, st.st_gid)
    assert node.atime_ns == 1_600_000_000_123_456_789
    assert node.mtime_ns == 1_700_000_000_987_654_321
    assert node.ctime_ns == st.st_ctime_ns
    assert (node.inode, node.dev, node.nlink) == (st.st_ino, st.st_dev, 1)
    assert node.user == user_name(st.st_uid)
    assert node.group == group_name(st.st_gid)
    assert not node.sparse
    assert node.target == b""
    assert node.content == [] and node.subtree is None


def test_hard_links_share_inode_and_count(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_bytes(b"data")
    os.link(a, tmp_path / "b")
    na, nb = _node(a), _node(tmp_path / "b")
    assert na.nlink == nb.nlink == 2
    assert (na.inode, na.dev) == (nb.inode, nb.dev)


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    (d / "sub").mkdir()
    os.chmod(d, 0o1750)  # sticky bit kept in mode
    node = _node(d)
    assert node.type == DIR
    assert node.mode == 0o1750
    assert node.nlink == 1  # not the number of subdirectories
    assert node.atime_ns == 0  # reading the directory would change it
    assert node.mtime_ns == os.lstat(d).st_mtime_ns
    assert node.size == 0


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"content")
    link = tmp_path / "link"
    os.symlink(b"target", link)
    node = _node(link)
    assert node.type == SYMLINK
    assert node.target == b"target"
    assert node.size == 0
    assert node.inode == os.lstat(link).st_ino != os.stat(target).st_ino


def test_dangling_symlink_with_non_utf8_target(tmp_path: Path) -> None:
    link = tmp_path / "dangling"
    os.symlink(b"/nowhere/caf\xe9", link)
    node = _node(link)
    assert node.type == SYMLINK
    assert node.target == b"/nowhere/caf\xe9"


def test_non_utf8_name(tmp_path: Path) -> None:
    path = os.fsencode(tmp_path) + b"/caf\xe9\xff"
    with open(path, "wb") as f:
        f.write(b"x")
    node = node_from_stat(b"caf\xe9\xff", path, os.lstat(path))
    assert node.name == b"caf\xe9\xff"
    assert node.type == FILE
    assert node.size == 1


def test_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    node = _node(fifo)
    assert node.type == FIFO
    assert node.mode == 0o600
    assert node.size == 0


def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "s"
    if len(os.fsencode(path)) >= 100:
        pytest.skip("temporary path too long for a unix socket")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
        assert _node(path).type == SOCKET
    finally:
        sock.close()


def test_character_device() -> None:
    if not os.path.exists("/dev/null") or not stat.S_ISCHR(os.lstat("/dev/null").st_mode):
        pytest.skip("no /dev/null character device")
    node = node_from_stat(b"null", b"/dev/null", os.lstat(b"/dev/null"))
    assert node.type == CHARDEV
    assert node.rdev == os.lstat("/dev/null").st_rdev != 0


def test_unsupported_type_is_an_os_error() -> None:
    fake = os.stat_result((0, 1, 2, 1, 0, 0, 0, 0, 0, 0))
    assert node_type(0) is None
    with pytest.raises(OSError) as info:
        node_from_stat(b"x", b"/x", fake)
    assert info.value.errno == errno.EINVAL


# ---- sparse files -----------------------------------------------------------------------------------------


def test_sparse_file_is_detected(tmp_path: Path) -> None:
    f = tmp_path / "sparse"
    with open(f, "wb") as fh:
        fh.write(b"head")
        fh.truncate(16 * 1024 * 1024)
    st = os.lstat(f)
    if st.st_blocks * 512 >= st.st_size:
        pytest.skip("file system does not store holes")
    node = _node(f)
    assert node.sparse
    assert node.size == 16 * 1024 * 1024


def test_dense_and_empty_files_are_not_sparse(tmp_path: Path) -> None:
    dense = tmp_path / "dense"
    with open(dense, "wb") as fh:
        fh.write(os.urandom(64 * 1024))
        os.fsync(fh.fileno())  # make the file system allocate blocks now (delayed allocation)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert not _node(dense).sparse
    assert not _node(empty).sparse


# ---- extended attributes ----------------------------------------------------------------------------------


def test_user_xattrs_are_read(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    _set_xattr(f, "user.sauvegarde.test", b"value\x00\xff")
    _set_xattr(f, "user.empty", b"")
    node = _node(f)
    assert node.xattrs[b"user.sauvegarde.test"] == b"value\x00\xff"
    assert node.xattrs[b"user.empty"] == b""
    assert read_xattrs(os.fsencode(f)) == node.xattrs


def test_xattrs_of_a_symlink_target_are_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x")
    _set_xattr(target, "user.only.on.target", b"1")
    link = tmp_path / "link"
    os.symlink("target", link)
    assert b"user.only.on.target" not in _node(link).xattrs
    assert _node(target).xattrs[b"user.only.on.target"] == b"1"


def test_no_xattrs_on_missing_path() -> None:
    assert read_xattrs(b"/nonexistent/path/for/sure") == {}


# ---- names ------------------------------------------------------------------------------------------------


def test_user_and_group_names() -> None:
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        pytest.skip("current uid has no passwd entry")
    assert user_name(uid) == name
    assert uid_for(name, -1) == uid
    assert gid_for(group_name(os.getgid()), -1) == os.getgid() or group_name(os.getgid()) == ""


def test_unknown_ids_and_names_fall_back() -> None:
    unknown = 2**31 - 7
    assert user_name(unknown) == ""
    assert group_name(unknown) == ""
    assert uid_for("", 123) == 123
    assert gid_for("", 456) == 456
    assert uid_for("no-such-user-sauvegarde", 7) == 7
    assert gid_for("no-such-group-sauvegarde", 8) == 8
