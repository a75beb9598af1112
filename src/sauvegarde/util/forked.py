"""Work done in a forked child process, for CPU-bound Python that one interpreter lock would serialise.

The child starts as a copy of the parent (the opened repository, its key and index are there, nothing is sent
over), runs one function and ends with ``os._exit``: no ``atexit`` handler, no repository lock released, no
buffered output flushed twice. While it runs it may send small messages (progress); its return value comes back
last. The parent reads the pipe on a thread of its own, so it can go on working meanwhile.

A child that raises, or dies (killed, out of memory), gives :class:`ChildFailed` on :meth:`Child.wait`, never a
result: the caller decides whether to redo the work in-process. Only for work that touches local files and no
network connection a parent thread may be using (an S3 or SSH session cannot be shared with a copy of itself).
The parent's other threads do not exist in the child: the child must not take a lock they may hold (make fresh
ones) and must not print. On Linux the child is killed if the thread that made it ends first (``prctl``
PR_SET_PDEATHSIG): make children from a thread that waits for them, such as the main one.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

from sauvegarde.util.libc import libc

Send = Callable[[Any], None]

_PR_SET_PDEATHSIG = 1
_RESULT = "result"
_FAILED = "failed"
_MESSAGE = "message"


class ChildFailed(Exception):
    """The child raised or died before returning its result."""


def can_fork() -> bool:
    return hasattr(os, "fork")


def start_children(count: int, make: Callable[[], Child]) -> list[Child]:
    """Up to ``count`` children from ``make``; fewer when the system refuses more processes (those started share
    the work; none: the caller does it all itself)."""
    children: list[Child] = []
    for _ in range(count):
        try:
            children.append(make())
        except OSError:
            break
    return children


class Turns:
    """Hands out the numbers 0 .. count-1, each once, to whichever process asks next: a counter in shared memory,
    made before the fork, so child processes share a list of work without a coordinator."""

    def __init__(self, count: int) -> None:
        import multiprocessing  # its start-up cost only where work is shared

        self.count = count
        self._next = multiprocessing.Value("q", 0)  # with a lock of its own

    def take(self) -> int | None:
        """The next number not yet handed out, or None when all have been."""
        with self._next.get_lock():
            i = int(self._next.value)
            if i >= self.count:
                return None
            self._next.value = i + 1
        return i


class Child:
    """``work(send)`` run in a forked child; ``on_message`` is called (on a parent thread) for each ``send``."""

    def __init__(self, work: Callable[[Send], Any], on_message: Callable[[Any], None]) -> None:
        reader, writer = Pipe(duplex=False)
        parent = os.getpid()
        # objects alive now are never scanned by the child's collector, which would otherwise touch (and so
        # copy) every page of the parent's heap
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            reader.close()
            writer.close()
            raise
        if pid == 0:  # pragma: no cover - the child; its effects are what the tests check
            reader.close()
            _end_with(parent)
            _run_child(work, writer)
        gc.unfreeze()
        writer.close()
        self.pid = pid
        self._conn = reader
        self._on_message = on_message
        self._outcome: tuple[str, Any] = (_FAILED, "worker process ended without a result")
        self._thread = threading.Thread(target=self._read, name=f"child-{pid}", daemon=True)
        self._thread.start()
        self._status: int | None = None

    def _read(self) -> None:
        try:
            while True:
                kind, value = self._conn.recv()
                if kind == _MESSAGE:
                    self._on_message(value)
                else:
                    self._outcome = (kind, value)
        except (EOFError, OSError):
            pass
        finally:
            self._conn.close()

    def wait(self) -> Any:
        """The child's result, once it has ended; raises ChildFailed if it gave none."""
        self._thread.join()
        self._reap()
        kind, value = self._outcome
        if kind == _RESULT:
            return value
        status = self._status or 0
        if os.WIFSIGNALED(status):
            value = f"{value} (killed by signal {os.WTERMSIG(status)})"
        raise ChildFailed(value)

    def kill(self) -> None:
        """Stop the child if it still runs, and reap it."""
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._thread.join()
        self._reap()

    def _reap(self) -> None:
        if self._status is None:
            _, self._status = os.waitpid(self.pid, 0)


def _end_with(parent: int) -> None:  # pragma: no cover - runs in the child
    """Have the kernel kill this child if the parent dies first (Linux), so no orphan works on for nothing; leave
    SIGINT and SIGTERM to the parent, which decides (a Ctrl-C kills its children; the daemon's SIGTERM lets the
    step in progress finish), instead of running its handlers in a copy of it."""
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def _run_child(work: Callable[[Send], Any], writer: Connection) -> None:  # pragma: no cover - runs in the child
    lock = threading.Lock()  # the child's own threads may send progress at the same time

    def send(value: Any) -> None:
        with lock:
            writer.send((_MESSAGE, value))

    code = 1
    try:
        try:
            outcome: tuple[str, Any] = (_RESULT, work(send))
            code = 0
        except BaseException as exc:  # reported to the parent, which decides
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            outcome = (_FAILED, f"worker process failed: {type(exc).__name__}: {exc}{where}")
        with lock:
            writer.send(outcome)
        writer.close()
    finally:
        os._exit(code)
