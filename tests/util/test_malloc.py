"""util.malloc against the real glibc allocator, in a fresh interpreter each: with keep_freed, a loop that frees a
buffer and allocates the next reuses the same pages (page faults counted by the kernel); without, it faults them in
again every time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator")

LOOP = textwrap.dedent(
    """
    import resource, sys
    from sauvegarde.util.malloc import keep_freed, tune_allocator
    tune_allocator()  # as the command line does
    if sys.argv[1] == "keep":
        assert keep_freed(8 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        buffer = bytearray(512 * 1024)  # zero-filled: every page touched
        del buffer
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout)


def test_keep_freed_reuses_the_pages_of_freed_buffers() -> None:
    pages = 512 * 1024 // 4096
    kept, given_back = faults("keep"), faults("give back")
    assert kept < 4 * pages, kept  # the first buffer's pages, then the same ones again
    assert given_back > 100 * pages, given_back  # about one buffer's pages per round
