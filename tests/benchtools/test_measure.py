"""The benchmark's process-tree memory sampler (bench.measure.TreeMemory) against real forked processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from bench.data import space_kept
from bench.measure import TreeMemory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

MIB = 1024

# A tool that forks one worker; BEFORE MiB are allocated and touched before the fork (shared with the worker),
# AFTER MiB in the worker after it (its own). Both processes hold their memory for a while, then exit.
TOOL = textwrap.dedent(
    """
    import os, sys, time
    before, after = int(sys.argv[1]), int(sys.argv[2])
    shared = bytearray(before << 20)
    for i in range(0, len(shared), 4096):
        shared[i] = 1
    pid = os.fork()
    if pid == 0:
        own = bytearray(after << 20)
        for i in range(0, len(own), 4096):
            own[i] = 1
        time.sleep(0.6)
        os._exit(0)
    with open("/proc/self/status") as fh:
        print(next(line.split()[1] for line in fh if line.startswith("VmRSS:")), flush=True)
    os.waitpid(pid, 0)
    """
)


def _peak(before: int, after: int) -> tuple[int, int]:
    """(the sampled peak, the tool's own resident memory after the fork), in KiB."""
    proc = subprocess.Popen([sys.executable, "-c", TOOL, str(before), str(after)], stdout=subprocess.PIPE)
    sampler = TreeMemory(proc.pid, below=False)
    out, _ = proc.communicate()
    peak = sampler.stop()
    assert proc.returncode == 0
    return peak, int(out)


def test_memory_a_worker_allocates_after_the_fork_is_added_to_the_tools() -> None:
    peak, tool = _peak(before=8, after=64)
    assert peak >= tool + 60 * MIB


def test_memory_a_worker_shares_with_the_tool_is_counted_once() -> None:
    peak, tool = _peak(before=64, after=0)
    assert tool <= peak < tool + 20 * MIB


def test_the_space_a_run_keeps_counts_every_repetition_copy_and_restore() -> None:
    """A run keeps every repetition's tree copy and restores until it ends (bench.steps.Bench.run): /usr/share
    (0.59 GB) restored by three tools and two over S3, the 0.71 GB file by three, three repetitions."""
    tree, big = 590_000_000, 710_000_000
    per_repetition = tree * (1 + 3 + 2) + big * 3
    assert space_kept(tree, big, 3, 5, 3) == 3 * per_repetition
    assert space_kept(tree, big, 5, 5, 3) == 5 * per_repetition
    assert space_kept(tree, 0, 1, 0, 0) == tree
