"""Writing restored entries into the target directory: files created or emptied without following a symlink put
in their place, special files, whole and sparse writes at an offset."""

from __future__ import annotations

import errno
import os
import shutil
import stat

from sauvegarde.repository.tree import BLOCKDEV, CHARDEV, FIFO, SYMLINK, Node

SPARSE_BLOCK = 64 * 1024  # runs of zeros this long (and aligned) are left as holes in sparse files
_ZEROS = bytes(SPARSE_BLOCK)


def create(out: bytes) -> int:
    """``out`` opened for writing from its start, created (0600) or emptied; a symlink, directory or busy
    executable in the way is removed and the file created in its place."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(out, flags, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ETXTBSY):
            raise
    remove_existing(out)
    return os.open(out, flags, 0o600)


def current_umask() -> int:
    """The process's umask, read from /proc (setting it to read it back would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def create_fresh(out: bytes, mode: int) -> tuple[int, bool]:
    """Create ``out`` with ``mode`` (less the umask) if nothing is there; else empty what is there, as :func:`create`.
    Whether the file is new: a file that was there keeps its owner and mode through the open."""
    try:
        return os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode), True
    except FileExistsError:
        return create(out), False


def has_xattr(path: bytes, name: bytes) -> bool:
    """Whether ``path`` has the extended attribute ``name`` (False where the file system has none)."""
    try:
        os.getxattr(path, name)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    return True


def make_special(out: bytes, node: Node) -> None:
    """A symlink, FIFO or device node at ``out`` (raises FileExistsError if something is there)."""
    if node.type == SYMLINK:
        os.symlink(node.target, out)
    elif node.type == FIFO:
        os.mkfifo(out, 0o600)
    elif node.type in (CHARDEV, BLOCKDEV):
        kind = stat.S_IFCHR if node.type == CHARDEV else stat.S_IFBLK
        os.mknod(out, 0o600 | kind, node.rdev)


def remove_existing(out: bytes) -> None:
    """Clear the way for a new entry; never follows a symlink."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(out)
    else:
        os.unlink(out)


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """All of ``data`` at ``offset`` (``pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def pwrite_sparse(fd: int, data: bytes, offset: int) -> None:
    """Write ``data`` at ``offset`` but skip whole zero blocks, leaving holes (the file was pre-sized)."""
    view = memoryview(data)
    for i in range(0, len(view), SPARSE_BLOCK):
        block = view[i : i + SPARSE_BLOCK]
        if block != _ZEROS[: len(block)]:
            pwrite_all(fd, block, offset + i)
