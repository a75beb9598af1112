"""Page cache helpers for tests of read-ahead: drop a file's pages, and count those the cache holds without
reading them (util-linux ``fincore``, which asks mincore(2))."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

HAVE_FINCORE = shutil.which("fincore") is not None


def evict(path: Path) -> None:
    """Drop this file's pages from the page cache (written back first: dirty pages cannot be dropped)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident(path: Path) -> int:
    """Bytes of the file the page cache holds, asked without reading it."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return int(out.split()[0])


def wait_resident(path: Path, size: int, timeout: float = 10.0) -> int:
    """Poll until the cache holds ``size`` bytes of the file (or ``timeout`` passes); the bytes it holds then."""
    deadline = time.monotonic() + timeout
    held = resident(path)
    while held < size and time.monotonic() < deadline:
        time.sleep(0.01)
        held = resident(path)
    return held
