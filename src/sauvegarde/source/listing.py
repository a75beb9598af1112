"""Opening and listing the files and directories being backed up, leaving them as they were found.

A backup reads without moving access times where the kernel lets it (``O_NOATIME``: programs that clean up by
access time see no use), never follows a symlink put in an entry's place since it was stat'ed, and never blocks on
a FIFO put in a file's place.
"""

from __future__ import annotations

import os

from sauvegarde.util.pagecache import WILLNEED, fetch_ahead

O_NOATIME = getattr(os, "O_NOATIME", 0)
RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)  # Linux 4.14; buffered reads honour it since 5.9
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO put in a file's place must not block


def open_noatime(path: bytes, flags: int = READ_FLAGS) -> int:
    """``path`` opened without moving its access time where we may (we own the file, or are root)."""
    if O_NOATIME:
        try:
            return os.open(path, flags | O_NOATIME)
        except PermissionError:
            pass  # not our file: the kernel only lets its owner (or root) leave the access time alone
    return os.open(path, flags)


def open_dir(path: bytes) -> int:
    """A directory opened for listing, without moving its access time where we may, and not following a symlink
    put in its place since it was stat'ed."""
    return open_noatime(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def list_dir(path: bytes) -> list[bytes]:
    """A directory's entry names, sorted (opened as :func:`open_dir` opens)."""
    fd = open_dir(path)
    try:
        return sorted(os.fsencode(name) for name in os.listdir(fd))
    finally:
        os.close(fd)


def subdir_names(path: bytes, names: set[bytes]) -> list[bytes]:
    """Those of ``names`` that are directories in ``path`` (from the listing's file types: no stat), sorted
    (opened as :func:`open_dir` opens)."""
    fd = open_dir(path)
    try:
        with os.scandir(fd) as it:  # through a descriptor, names come as str
            found = [os.fsencode(e.name) for e in it if e.is_dir(follow_symlinks=False)]
    finally:
        os.close(fd)
    return sorted(n for n in found if n in names)


def largest_first(path: bytes, names: list[bytes]) -> list[bytes]:
    """Subdirectories ``names`` of ``path`` in the order processes sharing them should take them: most entries
    first, a cheap guess at the work below each (one listing per subdirectory, no stat), so that the small ones
    are left for the end, where they even out when the processes finish. Ties keep their order; a subdirectory
    that cannot be listed counts as empty (the walk reports it)."""

    def entries(name: bytes) -> int:
        try:
            fd = open_dir(path.rstrip(b"/") + b"/" + name)
        except OSError:
            return 0
        try:
            with os.scandir(fd) as it:
                return sum(1 for _ in it)
        except OSError:
            return 0
        finally:
            os.close(fd)

    counts = {name: entries(name) for name in names}
    return sorted(names, key=lambda name: -counts[name])


def read_cached(fd: int, size: int, fetch: bool = False) -> bytearray | None:
    """The content of the regular file open at ``fd``, expected to be ``size`` bytes, if the page cache holds all of
    it: the read is refused (``RWF_NOWAIT``) rather than wait for the disk. None when it would wait, when the file
    is no longer ``size`` bytes long, or when the kernel or file system cannot tell: read it the usual way then.
    With ``fetch``, a read refused starts the disk reading the file into the cache (util.pagecache)."""
    if not RWF_NOWAIT:
        return None
    buf = bytearray(size + 1)  # one more: a file that grew since its stat is seen to have
    try:
        n = os.preadv(fd, [buf], 0, RWF_NOWAIT)
    except OSError:  # EAGAIN: not (all) cached; EOPNOTSUPP: cannot tell
        if fetch:
            fetch_ahead(fd, size)
        return None
    if n != size:  # part of it cached (a short read), or it grew or shrank
        return None
    del buf[n:]
    return buf


def starts_cached(path: bytes, length: int = 1 << 20) -> bool:
    """Whether the page cache holds the first ``length`` bytes of the file at ``path`` (or all of a shorter one):
    for a file too large to read whole, a sign that the rest is there too (it was read or written whole). False
    when it would wait for the disk, cannot be opened, or the kernel cannot tell."""
    if not RWF_NOWAIT:
        return False
    try:
        fd = open_noatime(path)
    except OSError:
        return False
    try:
        os.preadv(fd, [bytearray(length)], 0, RWF_NOWAIT)
    except OSError:  # EAGAIN: not cached, or only part of it (then the read is short, not refused: fine too)
        return False
    finally:
        os.close(fd)
    return True


def fetch_file_ahead(path: bytes, size: int) -> None:
    """Ask the kernel to start reading the first ``size`` bytes of the file at ``path`` into the page cache
    (:func:`sauvegarde.util.pagecache.fetch_ahead`; opened as a backup opens it, nothing if it cannot be)."""
    if WILLNEED is None:
        return
    try:
        fd = open_noatime(path)
    except OSError:
        return
    try:
        fetch_ahead(fd, size)
    finally:
        os.close(fd)
