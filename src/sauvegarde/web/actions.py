"""The dashboard's two actions, "run now" and "drill now": the real ``sauvegarde run --once`` and ``sauvegarde
drill`` commands started as subprocesses, one of each kind at a time, watched by a thread.

A subprocess keeps the web server responsive and gives the action the same locks, state records and alerts as
when a person or the daemon runs it. The last lines of its output are kept for the status page.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("run", "drill")
TAIL_LINES = 20


def drill_available() -> bool:
    """Whether this installation has restore drills (the ``drill`` command and its module)."""
    return all(importlib.util.find_spec(m) is not None for m in ("sauvegarde.drill", "sauvegarde.cli.drill"))


@dataclass
class Job:
    kind: str
    asset: str | None
    started: float
    user: str
    pid: int = 0
    finished: float | None = None
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.exit_code is None:
            return "running"
        return "done" if self.exit_code == 0 else f"failed (exit {self.exit_code})"


class Jobs:
    """Starts and remembers actions; ``on_done`` runs after each one ends (to drop cached status)."""

    def __init__(self, plan_path: str, on_done: Callable[[], None], keep: int = 20) -> None:
        self.plan_path = plan_path
        self.on_done = on_done
        self.keep = keep
        self._jobs: list[Job] = []
        self._lock = threading.Lock()

    def recent(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs))

    def running(self, kind: str) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs if j.kind == kind and j.exit_code is None), None)

    def command(self, kind: str, asset: str | None) -> list[str]:
        args = [sys.executable, "-m", "sauvegarde", kind, "--plan", self.plan_path]
        if kind == "run":
            args.append("--once")
        if asset is not None:
            args += ["--asset", asset]
        return args

    def start(self, kind: str, asset: str | None, user: str) -> Job:
        """Start ``kind`` (for ``asset``, else all); an action of that kind already running is returned instead."""
        if kind not in KINDS:
            raise ValueError(kind)
        with self._lock:
            busy = next((j for j in self._jobs if j.kind == kind and j.exit_code is None), None)
            if busy is not None:
                return busy
            job = Job(kind, asset, time.time(), user)
            proc = subprocess.Popen(
                self.command(kind, asset),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            job.pid = proc.pid
            self._jobs = [*self._jobs, job][-self.keep :]
        threading.Thread(target=self._watch, args=(job, proc), name=f"web-{kind}", daemon=True).start()
        return job

    def _watch(self, job: Job, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            job.output = [*job.output, raw.decode("utf-8", "replace").rstrip()][-TAIL_LINES:]
        code = proc.wait()
        job.finished = time.time()
        try:
            self.on_done()
        finally:
            job.exit_code = code

    def wait_all(self, timeout: float) -> None:
        """Wait for running actions (tests, shutdown)."""
        end = time.monotonic() + timeout
        while any(j.exit_code is None for j in self.recent()) and time.monotonic() < end:
            time.sleep(0.05)
