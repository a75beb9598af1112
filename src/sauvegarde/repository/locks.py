"""Repository locks: shared for operations that add data, exclusive for those that remove it.

A lock is a sealed JSON object under ``locks/<random>``; since objects are write-once, a lock is refreshed by
writing a new one and deleting the old. A lock is stale when it was not refreshed for ``STALE_AFTER`` seconds, or
when it was taken on this host by a process that no longer exists. Taking a lock writes it first and then looks
for conflicting locks, so two processes racing for an exclusive lock can both fail but never both succeed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass

from sauvegarde.crypto import Cipher
from sauvegarde.errors import ObjectNotFound, RepositoryLocked, SauvegardeError
from sauvegarde.repository import layout
from sauvegarde.storage import Storage

REFRESH_EVERY = 300.0
STALE_AFTER = 1800.0
_AAD = b"sauvegarde lock v1"


@dataclass(frozen=True)
class LockInfo:
    name: str
    exclusive: bool
    hostname: str
    pid: int
    username: str
    time: float

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return f"{kind} lock by {self.username}@{self.hostname} pid {self.pid} since {when}"

    def is_stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self.time > STALE_AFTER:
            return True
        return self.hostname == socket.gethostname() and not _pid_alive(self.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_locks(storage: Storage, cipher: Cipher) -> list[LockInfo]:
    out = []
    for info in storage.list(layout.LOCKS):
        try:
            body = json.loads(cipher.open(storage.load(info.name), aad=_AAD, what=info.name))
        except ObjectNotFound:
            continue
        except SauvegardeError:
            continue  # unreadable locks are not ours to interpret; `unlock --remove-all` clears them
        out.append(
            LockInfo(
                info.name,
                bool(body["exclusive"]),
                body["hostname"],
                int(body["pid"]),
                body["username"],
                float(body["time"]),
            )
        )
    return out


class Lock:
    """A held lock; refreshed by a background thread until :meth:`release`."""

    def __init__(self, storage: Storage, cipher: Cipher, exclusive: bool) -> None:
        self._storage = storage
        self._cipher = cipher
        self.exclusive = exclusive
        self._name = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()
        self._written_at = 0.0  # wall-clock time of the newest lock object we wrote
        self._lapsed = False

    def _write(self) -> str:
        body = {
            "exclusive": self.exclusive,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "username": os.environ.get("USER", str(os.getuid())),
            "time": time.time(),
        }
        name = layout.LOCKS + os.urandom(32).hex()
        self._storage.save(name, self._cipher.seal(json.dumps(body).encode(), aad=_AAD))
        now = time.time()
        if self._written_at and now - self._written_at > STALE_AFTER - REFRESH_EVERY:
            self._lapsed = True  # others may have seen the lock as stale in between
        self._written_at = now
        return name

    def acquire(self) -> Lock:
        self._name = self._write()
        for other in read_locks(self._storage, self._cipher):
            if other.name == self._name or other.is_stale():
                continue
            if self.exclusive or other.exclusive:
                self._delete(self._name)
                raise RepositoryLocked(f"repository is locked: {other.describe()} (run `unlock` if it is stale)")
        self._thread = threading.Thread(target=self._refresh_loop, name="lock-refresh", daemon=True)
        self._thread.start()
        return self

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_EVERY):
            try:
                new = self._write()
            except SauvegardeError:
                continue
            with self._mutex:
                old, self._name = self._name, new
            self._delete(old)

    def check_held(self) -> None:
        """Raise if the lock may have looked stale to others (so a prune may have run) or was removed."""
        lapsed = self._lapsed or time.time() - self._written_at > STALE_AFTER - REFRESH_EVERY
        with self._mutex:
            name = self._name
        if not lapsed and name:
            try:
                self._storage.stat(name)
            except ObjectNotFound:
                lapsed = True
        if lapsed or not name:
            raise RepositoryLocked(
                "this process's repository lock lapsed or was removed while it worked; "
                "data it relies on may have been pruned, so nothing was saved: run the command again"
            )

    def _delete(self, name: str) -> None:
        with contextlib.suppress(SauvegardeError):
            self._storage.delete(name)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            if self._name:
                self._delete(self._name)
                self._name = ""


def remove_stale_locks(storage: Storage, cipher: Cipher, remove_all: bool = False) -> list[LockInfo]:
    removed = []
    for lock in read_locks(storage, cipher):
        if remove_all or lock.is_stale():
            try:
                storage.delete(lock.name)
            except ObjectNotFound:
                continue
            removed.append(lock)
    return removed
