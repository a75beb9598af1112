"""Advice to the kernel about the page cache: fetch a file ahead of its reader, drop a file behind its writer.

One thread reading files (or packs) one after the other keeps one request in flight, and a cold disk waits on
each; advice given for the next ones (``POSIX_FADV_WILLNEED``) lets the disk work on them meanwhile. Used by the
backup for source files and by local storage for packs.

A big file written in full (a restore) would otherwise sit in the page cache as fresh pages until the kernel's
flusher gets to it, pushing out what the machine was using; ``POSIX_FADV_DONTNEED`` now and then starts writing
out what is dirty and gives back the pages already on disk, so the writer keeps reusing a few pages. Used by the
restore for files of 64 MiB or more, and by local storage for every object once it is fsynced.

Advice only: nothing is read into the process, dirty data is never dropped, and a refusal changes nothing.
"""

from __future__ import annotations

import contextlib
import os

WILLNEED: int | None = getattr(os, "POSIX_FADV_WILLNEED", None)  # not on macOS
DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


def fetch_ahead(fd: int, length: int = 0) -> None:
    """Ask for the first ``length`` bytes of the file open at ``fd`` (0: all of it) and return at once."""
    if WILLNEED is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, length, WILLNEED)


def drop_behind(fd: int) -> None:
    """Start writing out the dirty pages of the file open at ``fd`` and drop from the cache those already written;
    pages still being written stay (a later call drops them). Does not wait for the disk."""
    if DONTNEED is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, DONTNEED)
