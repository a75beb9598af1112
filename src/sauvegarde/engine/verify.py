"""Comparing a restored entry with its snapshot node: type, size, mode, mtime, symlink target and xattrs.

Content is checked blob by blob by the restore itself; this module covers the metadata. Owners are compared only
when running as root (otherwise the restore cannot set them), and setuid/setgid bits only as root too (the kernel
clears them for an unprivileged owner outside the file's group). Only ``user.`` xattrs are compared unless root,
for the same reason.
"""

from __future__ import annotations

import os
import stat

from sauvegarde.repository import Node
from sauvegarde.repository.tree import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, SYMLINK
from sauvegarde.source.metadata import gid_for, uid_for

_TYPES = {
    FILE: stat.S_ISREG,
    DIR: stat.S_ISDIR,
    SYMLINK: stat.S_ISLNK,
    FIFO: stat.S_ISFIFO,
    CHARDEV: stat.S_ISCHR,
    BLOCKDEV: stat.S_ISBLK,
}
_PRIVILEGED_BITS = stat.S_ISUID | stat.S_ISGID


def metadata_differences(out: bytes, node: Node, is_root: bool = False) -> list[str]:
    """What differs between the entry at ``out`` and ``node``; empty when they agree."""
    try:
        st = os.lstat(out)
    except OSError as exc:
        return [f"missing ({exc.strerror})"]
    is_type = _TYPES.get(node.type)
    if is_type is not None and not is_type(st.st_mode):
        return [f"type differs (expected {node.type})"]
    problems: list[str] = []
    if node.type == FILE and st.st_size != node.size:
        problems.append(f"size {st.st_size} instead of {node.size}")
    if node.type == SYMLINK:
        target = os.readlink(out)
        if target != node.target:
            problems.append(f"symlink target {os.fsdecode(target)!r} instead of {os.fsdecode(node.target)!r}")
    else:
        mask = 0o7777 if is_root else 0o7777 & ~_PRIVILEGED_BITS
        if stat.S_IMODE(st.st_mode) & mask != node.mode & mask:
            problems.append(f"mode {stat.S_IMODE(st.st_mode):o} instead of {node.mode:o}")
    if node.mtime_ns and st.st_mtime_ns != node.mtime_ns:
        problems.append(f"mtime {st.st_mtime_ns} instead of {node.mtime_ns}")
    if is_root:
        owner = (uid_for(node.user, node.uid), gid_for(node.group, node.gid))
        if (st.st_uid, st.st_gid) != owner:
            problems.append(f"owner {st.st_uid}:{st.st_gid} instead of {owner[0]}:{owner[1]}")
    problems += _xattr_differences(out, node, is_root)
    return problems


def _xattr_differences(out: bytes, node: Node, is_root: bool) -> list[str]:
    def wanted(name: bytes) -> bool:
        return is_root or name.startswith(b"user.")

    expected = {k: v for k, v in node.xattrs.items() if wanted(k)}
    try:
        names = [os.fsencode(n) for n in os.listxattr(out, follow_symlinks=False)]
        actual = {n: os.getxattr(out, n, follow_symlinks=False) for n in names if wanted(n)}
    except OSError:
        actual = {}
    if actual == expected:
        return []
    differing = sorted(os.fsdecode(n) for n in set(expected) | set(actual) if expected.get(n) != actual.get(n))
    return [f"xattrs differ: {', '.join(differing)}"]
