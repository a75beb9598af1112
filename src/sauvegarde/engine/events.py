"""Events the engine emits, and live counters that a progress display may poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sauvegarde.util.forked import Child


@dataclass(frozen=True)
class FileError:
    """An entry that could not be read or written; it is missing from the result."""

    path: str
    message: str


@dataclass(frozen=True)
class FileWarning:
    """Something worth knowing that did not lose data (a file changed or vanished while being read...)."""

    path: str
    message: str


Event = FileError | FileWarning
Reporter = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """A reporter that drops every event."""


@dataclass
class Counters:
    """Counters updated by worker threads, only ever growing but for :func:`take_back`; ``total_*`` are filled by a
    scanner when one runs."""

    files_done: int = 0
    bytes_done: int = 0
    total_files: int = 0
    total_bytes: int = 0
    scan_finished: bool = False
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.files_done += files
            self.bytes_done += nbytes

    def add_total(self, files: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.total_files += files
            self.total_bytes += nbytes


class SentCounters(Counters):
    """A child process's counters: what it does is sent to the parent (``send((files, nbytes))``), at most every
    0.2 s; :meth:`send_now` sends the rest. The parent adds the pairs to its own counters (see
    :func:`add_progress`)."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        super().__init__()
        self._send = send
        self._sent_at = time.monotonic()
        self._files = self._bytes = 0

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self._files += files
            self._bytes += nbytes
            if time.monotonic() - self._sent_at < 0.2:
                return
        self.send_now()

    def send_now(self) -> None:
        with self._lock:
            files, nbytes, self._files, self._bytes = self._files, self._bytes, 0, 0
            self._sent_at = time.monotonic()
        if files or nbytes:
            self._send((files, nbytes))


def report_problems(report: Reporter, errors: list[dict[str, str]], warnings: list[dict[str, str]]) -> None:
    """Emit the errors and warnings a child process collected in its summary (it reports nothing itself)."""
    for error in errors:
        report(FileError(error["path"], error["error"]))
    for warning in warnings:
        report(FileWarning(warning["path"], warning["warning"]))


def add_progress(counters: Counters, tally: Counters | None = None) -> Callable[[Any], None]:
    """The parent's side of :class:`SentCounters`: a message handler adding a child's progress to ``counters``, and
    to ``tally`` too if given: what that child alone reported (see :func:`take_back`)."""

    def on_message(message: Any) -> None:
        files, nbytes = message
        counters.add(files=files, nbytes=nbytes)
        if tally is not None:
            tally.add(files=files, nbytes=nbytes)

    return on_message


def child_reporting(work: Callable[[Any], Any], counters: Counters, tallies: dict[int, Counters]) -> Child:
    """A forked :class:`~sauvegarde.util.forked.Child` running ``work`` whose progress goes to ``counters``; what it
    alone reported is kept in ``tallies`` under its PID, for :func:`take_back` if it fails."""
    from sauvegarde.util.forked import Child  # multiprocessing: only where work is shared

    tally = Counters()
    child = Child(work, add_progress(counters, tally))
    tallies[child.pid] = tally
    return child


def take_back(counters: Counters, tally: Counters) -> None:
    """A child failed and its work is done again here: take back the progress it had reported (``tally``, see
    :func:`add_progress`), which the work done again reports a second time. The counts go back by that much: a
    progress bar must not pass its total."""
    counters.add(files=-tally.files_done, nbytes=-tally.bytes_done)
