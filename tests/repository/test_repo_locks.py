"""Repository locks: shared and exclusive conflicts, staleness, refresh and removal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sauvegarde.errors import RepositoryLocked
from sauvegarde.repository import Repository, layout
from sauvegarde.repository import locks as locks_module
from sauvegarde.repository.locks import STALE_AFTER, Lock, LockInfo, read_locks, remove_stale_locks
from sauvegarde.repository.testing import memory_repository


@pytest.fixture
def repo() -> Repository:
    return memory_repository()


def _lock_names(repo: Repository) -> set[str]:
    return {i.name for i in repo.storage.list(layout.LOCKS)}


def _plant(repo: Repository, exclusive: bool = True, **fields: object) -> str:
    """Write a lock as another process would have."""
    body: dict[str, object] = {
        "exclusive": exclusive,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "username": "someone",
        "time": time.time(),
    }
    body.update(fields)
    name = layout.LOCKS + os.urandom(32).hex()
    repo.storage.save(name, repo.cipher.seal(json.dumps(body).encode(), aad=locks_module._AAD))
    return name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _info(**kw: object) -> LockInfo:
    base: dict[str, object] = {
        "name": "locks/x",
        "exclusive": False,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "username": "u",
        "time": 1000.0,
    }
    base.update(kw)
    return LockInfo(**base)  # type: ignore[arg-type]


# ---- conflicts --------------------------------------------------------------------------------------------


def test_shared_locks_coexist(repo: Repository) -> None:
    a = repo.lock()
    b = repo.lock(exclusive=False)
    assert len(_lock_names(repo)) == 2
    a.release()
    b.release()
    assert _lock_names(repo) == set()


@pytest.mark.parametrize(("held", "wanted"), [(True, False), (False, True), (True, True)])
def test_exclusive_conflicts(repo: Repository, held: bool, wanted: bool) -> None:
    holder = repo.lock(exclusive=held)
    before = _lock_names(repo)
    with pytest.raises(RepositoryLocked) as info:
        repo.lock(exclusive=wanted)
    assert info.value.exit_code == 11
    assert ("exclusive" if held else "shared") in str(info.value)
    assert _lock_names(repo) == before  # the failed attempt removed its own lock object
    holder.release()
    repo.lock(exclusive=wanted).release()
    assert _lock_names(repo) == set()


def test_conflict_with_a_lock_of_another_live_process(repo: Repository) -> None:
    _plant(repo, exclusive=False, hostname="other-host")
    repo.lock(exclusive=False).release()
    with pytest.raises(RepositoryLocked, match="other-host"):
        repo.lock(exclusive=True)


def test_release_is_idempotent(repo: Repository) -> None:
    lk = repo.lock(exclusive=True)
    lk.release()
    lk.release()
    assert _lock_names(repo) == set()


# ---- staleness --------------------------------------------------------------------------------------------


def test_lock_of_a_dead_process_on_this_host_is_ignored(repo: Repository) -> None:
    stale = _plant(repo, exclusive=True, pid=_dead_pid())
    lk = repo.lock(exclusive=True)
    assert stale in _lock_names(repo)  # ignored, not removed
    lk.release()


def test_old_lock_is_ignored_even_from_another_host(repo: Repository) -> None:
    _plant(repo, exclusive=True, hostname="elsewhere", time=time.time() - STALE_AFTER - 60)
    repo.lock(exclusive=True).release()


def test_recent_lock_from_another_host_is_not_stale(repo: Repository) -> None:
    _plant(repo, exclusive=True, hostname="elsewhere", pid=_dead_pid())  # the pid means nothing here
    with pytest.raises(RepositoryLocked):
        repo.lock(exclusive=False)


def test_is_stale() -> None:
    now = 1000.0 + STALE_AFTER
    assert not _info().is_stale(now=now)
    assert _info().is_stale(now=now + 1)
    assert _info(pid=_dead_pid()).is_stale(now=1000.0)
    assert not _info(hostname="elsewhere", pid=_dead_pid()).is_stale(now=1000.0)
    assert _info(hostname="elsewhere").is_stale(now=now + 1)


def test_describe() -> None:
    text = _info(exclusive=True, username="alice", hostname="box", pid=42).describe()
    assert text.startswith("exclusive lock by alice@box pid 42 since ")


def test_remove_stale_locks(repo: Repository) -> None:
    live = repo.lock(exclusive=False)
    dead = _plant(repo, exclusive=True, pid=_dead_pid())
    old = _plant(repo, exclusive=False, hostname="elsewhere", time=time.time() - STALE_AFTER - 1)
    foreign = _plant(repo, exclusive=False, hostname="elsewhere")
    removed = remove_stale_locks(repo.storage, repo.cipher)
    assert {r.name for r in removed} == {dead, old}
    assert _lock_names(repo) == {foreign, live._name}
    removed = remove_stale_locks(repo.storage, repo.cipher, remove_all=True)
    assert {r.name for r in removed} == {foreign, live._name}
    assert _lock_names(repo) == set()
    live.release()  # its object is gone already: no error


def test_unreadable_locks_are_skipped(repo: Repository) -> None:
    repo.storage.save(layout.LOCKS + "ab" * 32, b"garbage")
    other_key = memory_repository()
    _plant(other_key)
    repo.storage.save(layout.LOCKS + "cd" * 32, other_key.storage.load(next(iter(_lock_names(other_key)))))
    assert read_locks(repo.storage, repo.cipher) == []
    repo.lock(exclusive=True).release()


def test_read_locks(repo: Repository) -> None:
    name = _plant(repo, exclusive=True, username="bob", pid=7, time=1234.5, hostname="h")
    assert read_locks(repo.storage, repo.cipher) == [LockInfo(name, True, "h", 7, "bob", 1234.5)]


# ---- refresh ----------------------------------------------------------------------------------------------


def test_lock_is_refreshed_under_a_new_name(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks_module, "REFRESH_EVERY", 0.01)
    lk = Lock(repo.storage, repo.cipher, exclusive=True).acquire()
    first = lk._name
    deadline = time.monotonic() + 5
    while first in _lock_names(repo) and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setattr(locks_module, "REFRESH_EVERY", 300.0)
    time.sleep(0.1)  # let a refresh in progress finish; the next one is minutes away
    assert lk._name != first
    assert _lock_names(repo) == {lk._name}  # the old lock object was deleted
    (info,) = read_locks(repo.storage, repo.cipher)
    assert info.exclusive
    assert info.pid == os.getpid()
    lk.release()
    assert _lock_names(repo) == set()
