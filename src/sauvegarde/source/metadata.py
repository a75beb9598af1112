"""Turn ``lstat`` results and extended attributes into tree nodes, and back onto the file system."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from functools import lru_cache

from sauvegarde.repository.tree import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, SOCKET, SYMLINK, Node


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


@lru_cache(maxsize=4096)
def uid_for(name: str, fallback: int) -> int:
    try:
        return pwd.getpwnam(name).pw_uid if name else fallback
    except KeyError:
        return fallback


@lru_cache(maxsize=4096)
def gid_for(name: str, fallback: int) -> int:
    try:
        return grp.getgrnam(name).gr_gid if name else fallback
    except KeyError:
        return fallback


def node_type(mode: int) -> str | None:
    fmt = stat.S_IFMT(mode)
    return {
        stat.S_IFREG: FILE,
        stat.S_IFDIR: DIR,
        stat.S_IFLNK: SYMLINK,
        stat.S_IFIFO: FIFO,
        stat.S_IFCHR: CHARDEV,
        stat.S_IFBLK: BLOCKDEV,
        stat.S_IFSOCK: SOCKET,
    }.get(fmt)


def node_from_stat(name: bytes, path: bytes, st: os.stat_result) -> Node:
    """A node for ``path`` (not followed if a symlink) with its metadata; file content is filled in later."""
    ntype = node_type(st.st_mode)
    if ntype is None:
        raise OSError(errno.EINVAL, "unsupported file type")
    node = Node(
        name=name,
        type=ntype,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        user=user_name(st.st_uid),
        group=group_name(st.st_gid),
        mtime_ns=st.st_mtime_ns,
        atime_ns=st.st_atime_ns,
        ctime_ns=st.st_ctime_ns,
        inode=st.st_ino,
        dev=st.st_dev,
        nlink=st.st_nlink,
    )
    if ntype == FILE:
        node.size = st.st_size
        node.sparse = st.st_size > 0 and st.st_blocks * 512 < st.st_size
    elif ntype == SYMLINK:
        node.target = os.readlink(path)
    elif ntype in (CHARDEV, BLOCKDEV):
        node.rdev = st.st_rdev
    if ntype == DIR:
        node.nlink = 1
    if ntype in (DIR, SYMLINK):
        # Reading a symlink's target moves its access time (no O_NOATIME for readlink), and so did listing a
        # directory before backups opened them with O_NOATIME: stored, it would make the next backup find them all
        # changed and store again every tree above them. Restore gives them their modification time.
        node.atime_ns = 0
    node.xattrs = read_xattrs(path)
    return node


def read_xattrs(path: bytes) -> dict[bytes, bytes]:
    """All extended attributes (user, security, trusted, POSIX ACLs) that can be read; empty if unsupported."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[bytes, bytes] = {}
    for n in names:
        try:
            out[os.fsencode(n)] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
    return out
