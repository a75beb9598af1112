"""Letting the file system forget recent deletions before a timed restore.

On ext4 without a journal (this benchmark's VM), the inode allocator will not reuse an inode deleted less than 60 s
ago, or 360 s while its inode table block is dirty (fs/ext4/ialloc.c, ``recently_deleted``, checked only when
there is no journal), and a restore keeps dirtying those blocks with the inodes it creates. Each file created
walks past every such inode of its block group, reading the inode table for each: after an ``rm -rf`` of a
50,000-file tree, a restore of the same size spends 10-25 s in the kernel instead of 3-4 s (perf:
``find_inode_bit`` -> ``recently_deleted`` -> ``find_get_block_common``), whichever tool runs it, still 65 s
after the deletion and a sync. The benchmark therefore deletes no tree until the end of the run, and a restore
that follows a mass deletion anyway (leftovers of an interrupted run) first waits until it is 6 minutes old.
Journalled file systems need no wait.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

RECENTLY_DELETED_S = 361.0  # ext4's RECENTCY_MIN + RECENTCY_DIRTY, counted in whole seconds
MASS_DELETION = 1000  # files and directories removed at once that count as a mass deletion


def unjournalled_ext4(path: Path) -> bool:
    """Whether ``path`` is on an ext4 file system mounted without a journal (as far as /sys tells)."""
    try:
        out = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", str(path)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    if len(out) != 2 or out[1] != "ext4":
        return False
    journal = Path("/sys/fs/ext4") / Path(out[0]).name / "journal_task"
    try:
        return journal.read_text().strip() == "<none>"
    except OSError:
        return False


class Deletions:
    """When the benchmark last deleted files, and the wait that rule asks for before creating many again."""

    def __init__(self, work: Path) -> None:
        self.applies = unjournalled_ext4(work)
        self.last: float | None = None
        self.waited_s = 0.0

    def deleted(self) -> None:
        self.last = time.monotonic()

    def settle(self) -> float:
        """Sync, then sleep until the last deletion is old enough; the seconds slept."""
        if not self.applies or self.last is None:
            return 0.0
        subprocess.run(["sync"], check=False)
        wait = self.last + RECENTLY_DELETED_S - time.monotonic()
        if wait <= 0:
            return 0.0
        time.sleep(wait)
        self.waited_s += wait
        return wait
