"""Events the engine emits, and live counters that a progress display may poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
    """Monotonic counters updated by worker threads; ``total_*`` are filled by a scanner when one runs."""

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


def add_progress(counters: Counters) -> Callable[[Any], None]:
    """The parent's side of :class:`SentCounters`: a message handler adding a child's progress to ``counters``."""

    def on_message(message: Any) -> None:
        files, nbytes = message
        counters.add(files=files, nbytes=nbytes)

    return on_message
