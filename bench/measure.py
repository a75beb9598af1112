"""Timing one command: wall time, peak memory and CPU time, with the results of every repetition.

Peak memory is the max RSS from ``/usr/bin/time -f %M``, or ``os.wait4`` when GNU time is missing: that is the
largest single process of the child's tree. A tool that forks worker processes (sauvegarde's restore does) would
look smaller than it is by that measure alone, so the tree is also sampled every 10 ms while the command runs:
the resident set of the tool's process plus the private memory (USS) of each process it started (pages they
share with it are counted once, in its RSS), and the larger of the two figures is kept (see TreeMemory for how
the sampling keeps off the measured tool's CPU). Output goes to a log file.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GNU_TIME = "/usr/bin/time"


def have_gnu_time() -> bool:
    return os.access(GNU_TIME, os.X_OK)


@dataclass
class Run:
    """One timed command."""

    ok: bool
    wall_s: float
    maxrss_kib: int
    cpu_s: float
    repo_bytes: int | None = None
    data_bytes: int | None = None  # bytes processed (backed up, restored or read), for the throughput
    mib_s: float | None = None
    server_cpu_s: float | None = None  # CPU time of the S3 server during the command (s3 step)
    note: str = ""

    def set_data_bytes(self, n: int) -> None:
        self.data_bytes = n
        self.mib_s = round(n / 2**20 / self.wall_s, 2) if self.wall_s > 0 else None


@dataclass
class Result:
    """All repetitions of one (tool, measure)."""

    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs if r.ok and getattr(r, attr) is not None]
        return float(statistics.median(values)) if values else None

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)


def timed(
    log: Path,
    cmd: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
) -> Run:
    """Run CMD with its output in LOG and measure it; a failure is reported on stderr with the log's last lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        out.write((" ".join(cmd) + "\n").encode())
        out.flush()
        if have_gnu_time():
            fd, tfile = tempfile.mkstemp(prefix="time-", dir=log.parent)
            os.close(fd)
            full = [GNU_TIME, "-f", "%M %U %S", "-o", tfile, *cmd]
            start = time.perf_counter()
            proc = subprocess.Popen(full, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            sampler = TreeMemory(proc.pid, below=True)
            try:
                rc = proc.wait(timeout=timeout)
                wall = time.perf_counter() - start
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                wall, rc = time.perf_counter() - start, -1
            tree_kib = sampler.stop()
            fields = Path(tfile).read_text().strip().splitlines()
            os.unlink(tfile)
            # GNU time prints "Command exited with non-zero status N" before the format line on failure.
            parts = fields[-1].split() if fields else []
            if len(parts) == 3:
                maxrss, cpu = int(parts[0]), float(parts[1]) + float(parts[2])
            else:
                maxrss, cpu = 0, 0.0
        else:
            start = time.perf_counter()
            popen = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            sampler = TreeMemory(popen.pid, below=False)
            _, status, usage = os.wait4(popen.pid, 0)
            wall = time.perf_counter() - start
            popen.returncode = rc = os.waitstatus_to_exitcode(status)
            maxrss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
            tree_kib = sampler.stop()
    run = Run(ok=rc == 0, wall_s=round(wall, 3), maxrss_kib=max(maxrss, tree_kib), cpu_s=round(cpu, 2))
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        run.note = f"exit {rc}: " + " | ".join(tail)
        print(f"    FAILED {log.stem}: {run.note}", file=sys.stderr)
    return run


class TreeMemory:
    """Samples, every 10 ms until stopped, the memory of a tool's process tree: the tool's RSS plus the private
    memory of its descendants. ``below``: ``pid`` is a wrapper (GNU time) and the tool is its child. Only while
    the tool has descendants is anything read beyond two small /proc files; 0 if it never had any.

    The sampler shares the machine with the tool it measures, so each tick must be cheap. A process's private
    memory (smaps_rollup) costs a walk of its page tables, about 1.3 ms for one of sauvegarde's backup workers:
    read for two of them every 10 ms, it took a third of a core from the tool (1.0 s of CPU during a 4 s first
    backup, which it slowed from 3.7-4.2 to 4.8-4.9 s), a cost restic and borg, one process each, never paid.
    So a tick reads only status files (the tool's VmRSS, each descendant's RssAnon); a descendant's private
    memory is its last smaps_rollup figure plus whatever its anonymous memory grew since (a page a process
    allocates after the fork is its own; memory it frees is still counted until the next reading, so the
    estimate errs high), smaps_rollup is read again every ``RESYNC`` ticks, and the descendants are listed
    again every ``RELIST`` ticks (a process that exits in between reads as 0)."""

    RESYNC = 10
    RELIST = 5

    def __init__(self, pid: int, below: bool) -> None:
        self._pid = pid
        self._below = below
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-memory", daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self._peak_kib

    def _loop(self) -> None:
        tool = 0 if self._below else self._pid
        descendants: list[int] = []
        synced: dict[int, tuple[int, int]] = {}  # pid -> (private KiB, RssAnon KiB) at its last smaps reading
        tick = 0
        while not self._stop.wait(0.01):
            tick += 1
            if not tool:
                kids = _children(self._pid)
                if not kids:
                    continue
                tool = kids[0]
            if tick % self.RELIST == 1 or not descendants:
                descendants = _descendants(tool)
                synced = {p: v for p, v in synced.items() if p in descendants}
            if not descendants:
                continue
            total = _status_kib(tool, "VmRSS:")
            for p in descendants:
                anon = _status_kib(p, "RssAnon:")
                if p not in synced or tick % self.RESYNC == 0:
                    synced[p] = (_private_kib(p), anon)
                private, anon_then = synced[p]
                total += private + max(0, anon - anon_then) if anon else 0
            self._peak_kib = max(self._peak_kib, total)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    except (OSError, ValueError):
        pass
    return out


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = _children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _private_kib(pid: int) -> int:
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return total
