"""Asking the kernel to read a file into the page cache ahead of its reader (``POSIX_FADV_WILLNEED``).

One thread reading files (or packs) one after the other keeps one request in flight, and a cold disk waits on
each; advice given for the next ones lets the disk work on them meanwhile. Used by the backup for source files
and by local storage for packs. Advice only: nothing is read into the process, and a refusal changes nothing.
"""

from __future__ import annotations

import contextlib
import os

WILLNEED: int | None = getattr(os, "POSIX_FADV_WILLNEED", None)  # not on macOS


def fetch_ahead(fd: int, length: int = 0) -> None:
    """Ask for the first ``length`` bytes of the file open at ``fd`` (0: all of it) and return at once."""
    if WILLNEED is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, length, WILLNEED)
