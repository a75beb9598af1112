"""Keep the C allocator from holding on to freed pack and chunk buffers.

glibc serves big allocations with mmap and returns them on free, but after the first such free it raises its mmap
threshold up to 32 MiB, after which our 1-16 MiB buffers come from the heap arenas of many threads and fragment
them: a backup's resident memory then grows to about twice what it uses. Pinning the threshold at 1 MiB keeps
big buffers on mmap (measured on a /usr/share backup: 224 MB -> 171 MB peak RSS).

Pinning it also pins glibc's trim threshold at 128 KiB: the heaps give back their free top at once, and a loop
that frees a buffer and takes the next one faults the same pages in again each time. :func:`keep_freed` raises
that limit where such a loop runs (the restore: half its page faults).
"""

from __future__ import annotations

import contextlib
import sys

from sauvegarde.util.libc import libc

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator(threshold: int = 1 << 20, arenas: int = 0) -> bool:
    """Fix glibc's mmap threshold and, if ``arenas``, the number of heap arenas (Linux only); returns whether it
    was applied. Each thread that allocates gets an arena of its own, up to eight per core, and each keeps the
    memory freed in it: a backup's file workers, uploaders and compression threads then hold several partly
    empty heaps."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        ok = bool(libc().mallopt(_M_MMAP_THRESHOLD, threshold))
        return ok and (not arenas or bool(libc().mallopt(_M_ARENA_MAX, arenas)))
    return False


def keep_freed(limit: int) -> bool:
    """Let each glibc heap arena keep up to ``limit`` bytes of free memory at its top for the next allocations
    rather than give it back at once (the default gives back anything above 128 KiB; Linux only); returns whether
    it was applied. A loop that frees a buffer and allocates the next one of about the same size then reuses the
    same pages: given back, each page costs a fault and zeroing again."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(libc().mallopt(_M_TRIM_THRESHOLD, limit))
    return False


def release_free_memory() -> bool:
    """Return the free pages of every glibc heap arena to the system (``malloc_trim(0)``; Linux only), after a
    burst of short-lived allocations such as decoding the index; returns whether any memory was released."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(libc().malloc_trim(0))
    return False
