"""Opening and listing the files and directories being backed up, leaving them as they were found.

A backup reads without moving access times where the kernel lets it (``O_NOATIME``: programs that clean up by
access time see no use), never follows a symlink put in an entry's place since it was stat'ed, and never blocks on
a FIFO put in a file's place.
"""

from __future__ import annotations

import os

O_NOATIME = getattr(os, "O_NOATIME", 0)
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
