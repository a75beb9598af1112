"""backup shares the subdirectories of the directory it backs up among forked child processes on a local
repository: the snapshot is the one a single process makes, byte for byte; progress, errors and the ransomware
guard's observations come back to the parent; a child that dies has its part done again; storage another process
cannot see (memory) is never split."""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from guard_trees import encrypt_files, make_tree
from sauvegarde.engine import backup as backup_module
from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.check import Checker, ReadSubset
from sauvegarde.engine.events import FileError, SentCounters
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.guard.guard import Guard
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.repository.testing import PASSWORD, memory_repository
from sauvegarde.source.listing import READ_FLAGS
from sauvegarde.storage.local import LocalStorage
from sauvegarde.util import forked

from .repo_helpers import make_files
from .test_restore_batches import snapshot_of


def _tree(root: Path, streamed: bool = False) -> int:
    """Nested subdirectories with small, empty, duplicate and multi-chunk files, a symlink and a hardlink (and a
    file larger than the largest chunk, read as a stream)."""
    count = 0
    if streamed:
        (root / "dir4").mkdir(parents=True)
        (root / "dir4" / "streamed.bin").write_bytes(os.urandom(9 * 1024 * 1024))
        count += 1
    for d in range(5):
        sub = root / f"dir{d}" / "inner"
        make_files(sub, seed=40 + d, count=4, size=20_000 * (d + 1))
        (sub / "empty").write_bytes(b"")
        (root / f"dir{d}" / "same.txt").write_bytes(b"the same in every directory\n" * 50)
        count += 4 + 2
    (root / "top.bin").write_bytes(os.urandom(300_000))
    (root / "dir3" / "mid.bin").write_bytes(os.urandom(1_500_000))  # a few chunks, read whole
    (root / "dir0" / "link").symlink_to("same.txt")
    os.link(root / "dir1" / "same.txt", root / "dir2" / "hard.txt")
    return count + 3


def _local(tmp_path: Path) -> Repository:
    return Repository.init(LocalStorage(str(tmp_path / "repo")), PASSWORD)


def _reopen(repo: Repository) -> Repository:
    return Repository.open(LocalStorage(repo.storage.location), PASSWORD)


def _subtree(repo: Repository, snap: Snapshot, path: Path) -> bytes | None:
    node, _ = resolve(TreeLoader(_reopen(repo)), bytes.fromhex(snap.tree), str(path))
    return node.subtree if node is not None else None


def _checked(repo: Repository) -> list[object]:
    """Errors of a full check reading all data (blobs stored twice, as split backups make, are only counted)."""
    fresh = Repository.open(LocalStorage(repo.storage.location), PASSWORD, load_index=False)
    return list(Checker(fresh, read=ReadSubset()).run().errors)


def _forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    forks: list[int] = []
    real = forked.Child

    def counted(*args: Any) -> Any:
        child = real(*args)
        forks.append(child.pid)
        return child

    monkeypatch.setattr(forked, "Child", counted)  # as events.child_reporting finds it
    return forks


def _restores_exactly(repo: Repository, snap: Snapshot, target: Path, src: Path) -> None:
    summary = Restore(_reopen(repo), snap, RestoreOptions(target=str(target), processes=0)).run()
    assert summary.errors == []
    restored = snapshot_of(target / str(src).lstrip("/"))
    assert {k: v[0] for k, v in restored.items()} == {k: v[0] for k, v in snapshot_of(src).items()}


def _page_cache(monkeypatch: pytest.MonkeyPatch, state: str, log: Path, fetched: Path) -> None:
    """Make the children see files as cached (as they are: just written), not cached, or one in two; each read
    answered from the cache appends a line to ``log`` (the children's only way to tell), each file the disk is
    asked to fetch ahead a line to ``fetched``."""
    real_read, real_starts, real_fetch = (
        backup_module.read_cached,
        backup_module.starts_cached,
        backup_module.fetch_file_ahead,
    )
    calls = itertools.count()

    def refused() -> bool:
        return state == "not-cached" or (state == "mixed" and next(calls) % 2 == 1)

    def read_cached(fd: int, size: int, fetch: bool = False) -> bytearray | None:
        if refused():
            if fetch:
                with fetched.open("a") as f:
                    f.write(f"{size}\n")
            return None
        data = real_read(fd, size, fetch)
        if data is not None:
            with log.open("a") as f:
                f.write(f"{len(data)}\n")
        return data

    def fetch_file_ahead(path: bytes, size: int) -> None:
        with fetched.open("a") as f:
            f.write(f"{size}\n")
        real_fetch(path, size)

    def starts_cached(path: bytes) -> bool:
        cached = not refused() and real_starts(path)
        if cached:
            with log.open("a") as f:
                f.write(f"{os.path.getsize(path)}\n")
        return cached

    monkeypatch.setattr(backup_module, "read_cached", read_cached)
    monkeypatch.setattr(backup_module, "starts_cached", starts_cached)
    monkeypatch.setattr(backup_module, "fetch_file_ahead", fetch_file_ahead)


@pytest.mark.parametrize("cache", ["cached", "not-cached", "mixed"])
def test_a_split_backup_is_the_snapshot_one_process_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """Children store the files the page cache holds as they walk them, and hand the others to their file
    workers (see Backup._save_cached): the same snapshot either way, and the same as one process makes."""
    src = tmp_path / "src"
    files = _tree(src, streamed=True)
    repo = _local(tmp_path)
    forks = _forks(monkeypatch)
    log, fetched = tmp_path / "cached.log", tmp_path / "fetched.log"
    _page_cache(monkeypatch, cache, log, fetched)
    job = Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2))
    split = job.run()
    assert len(forks) == 2 and os.getpid() not in forks
    read_here = [int(n) for n in log.read_text().split()] if log.exists() else []
    asked = sorted(int(n) for n in fetched.read_text().split()) if fetched.exists() else []
    if cache == "cached":
        # every file (top.bin, beside the split directories, by the main process's file workers)
        assert len(read_here) == files and 1_500_000 in read_here and 9 * 1024 * 1024 in read_here
        assert asked == []
    elif cache == "not-cached":
        assert read_here == []
        # the disk was asked once for every file the workers then read, the first of each batch included (all
        # but the streamed one, which the kernel reads ahead anyway): by a child's walk, or by the main
        # process's file worker (top.bin)
        assert len(asked) == files - 1 and 1_500_000 in asked and 300_000 in asked
        assert 9 * 1024 * 1024 not in asked
    else:
        assert 0 < len(read_here) < files
    # a child writes the index object of its packs (one process writes one; a child that started late may have
    # found every directory taken)
    assert len(os.listdir(tmp_path / "repo" / "index")) >= 2
    assert _checked(repo) == []
    one = Backup(_reopen(repo), BackupOptions(paths=[str(src)], processes=0, workers=2, force=True))
    single = one.run()
    # every tree and node below the source the same: names, metadata, content IDs (the directories above it may
    # have changed in between: other tests create theirs beside it)
    assert _subtree(repo, split, src) == _subtree(repo, single, src) is not None
    assert job.summary.files_new == one.summary.files_new == files and job.summary.errors == []
    assert job.summary.dirs == one.summary.dirs == 16
    assert job.counters.files_done == one.counters.files_done == files + 1  # and the symlink
    assert job.summary.bytes_processed == one.summary.bytes_processed
    # the children's packs are counted (the second backup stores no data: at most the trees above the source)
    assert one.summary.bytes_added < 10_000 < 1_000_000 < job.summary.bytes_added
    _restores_exactly(repo, split, tmp_path / "target", src)


@pytest.mark.parametrize("file_first", [False, True])
def test_a_lone_subdirectory_is_split_one_level_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_first: bool
) -> None:
    """/home with one user: the split is tried again in the one subdirectory, where the work is. A file of the
    backed-up directory sorted before it has gone to the workers by then: one process does it all, as before."""
    src = tmp_path / "home"
    files = _tree(src / "alice")
    if file_first:
        (src / "README").write_bytes(b"read me first\n" * 100)
        files += 1
    repo = _local(tmp_path)
    forks = _forks(monkeypatch)
    job = Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2))
    split = job.run()
    assert len(forks) == (0 if file_first else 2)
    # one index object here; in the split, one per child that found a directory left (see the test above)
    indexes = len(os.listdir(tmp_path / "repo" / "index"))
    assert indexes == 1 if file_first else indexes >= 2
    assert job.summary.files_new == files and job.summary.dirs == 17 and job.summary.errors == []
    assert _checked(repo) == []
    single = Backup(_reopen(repo), BackupOptions(paths=[str(src)], processes=0, workers=2, force=True)).run()
    assert _subtree(repo, split, src) == _subtree(repo, single, src) is not None
    _restores_exactly(repo, split, tmp_path / "target", src)


def test_an_unchanged_split_backup_carries_every_file_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    repo = _local(tmp_path)
    first = Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2)).run()
    (src / "dir3" / "inner" / "new.txt").write_bytes(b"one new file\n")
    forks = _forks(monkeypatch)
    job = Backup(_reopen(repo), BackupOptions(paths=[str(src)], processes=2, workers=2, split_min_files=0))
    second = job.run()
    assert second.parent == first.id and second.tree != first.tree and len(forks) == 2
    assert job.summary.files_unmodified == files and job.summary.files_new == 1
    assert job.summary.bytes_added > 0
    _restores_exactly(repo, second, tmp_path / "target", src)


def test_errors_in_a_child_reach_the_parent_and_its_reporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    _tree(src)
    bad = os.fsencode(src / "dir4" / "inner" / "f44-0.bin")
    real_open = backup_module.open_noatime

    def refuse(path: bytes, flags: int = READ_FLAGS) -> int:
        if path == bad:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags)

    monkeypatch.setattr(backup_module, "open_noatime", refuse)  # the children are forked copies: they see it too
    forks = _forks(monkeypatch)
    events: list[object] = []
    job = Backup(_local(tmp_path), BackupOptions(paths=[str(src)], processes=2, workers=2), events.append)
    job.run()
    assert len(forks) == 2
    assert job.summary.errors == [{"path": os.fsdecode(bad), "error": "Permission denied"}]
    assert [(type(e), e.path) for e in events] == [(FileError, os.fsdecode(bad))]  # type: ignore[attr-defined]


def test_a_child_that_dies_has_its_part_done_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its directories are backed up again here, and the progress it had reported is taken back (not counted
    twice)."""
    src = tmp_path / "src"
    files = _tree(src)
    real_work = Backup._child_work
    died = tmp_path / "died"

    def dies_once(self: Backup, split: Any, send: Any) -> Any:
        try:  # the first child to start (the file made atomically) takes a directory, then is killed
            os.close(os.open(died, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return real_work(self, split, send)
        assert split.turns.take() is not None
        counters = SentCounters(send)
        counters.add(files=3, nbytes=60_000)  # as if it had backed up part of its directory
        counters.send_now()
        os.kill(os.getpid(), signal.SIGKILL)
        return None  # never reached

    monkeypatch.setattr(Backup, "_child_work", dies_once)
    repo = _local(tmp_path)
    job = Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2))
    snap = job.run()
    assert died.exists()
    assert [w["warning"] for w in job.summary.warnings] == [
        "worker process ended without a result (killed by signal 9); its part of the backup is done again by the "
        "main process"
    ]
    assert job.summary.files_new == files
    assert job.counters.files_done == files + 1  # and the symlink, each once
    assert job.counters.bytes_done == job.summary.bytes_processed
    assert _checked(repo) == []
    _restores_exactly(repo, snap, tmp_path / "target", src)


def test_memory_storage_is_never_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    forks = _forks(monkeypatch)
    job = Backup(memory_repository(), BackupOptions(paths=[str(src)], processes=2, workers=2))
    job.run()
    assert forks == [] and job.summary.files_new == files


def test_the_guard_sees_what_the_children_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files encrypted, renamed and a ransom note dropped in folders that different children back up: the
    verdict and its evidence are the ones a single process reaches."""
    root = tmp_path / "share"
    share = make_tree(root)
    forks = _forks(monkeypatch)
    verdicts: list[dict[str, Any]] = []
    for processes in (0, 2):
        repo = _local(tmp_path / f"p{processes}")
        first = Backup(repo, BackupOptions(paths=[str(root)], processes=processes, observer=Guard("enforce")))
        assert first.run().extra["guard"]["verdict"] == "clean"  # type: ignore[index]
        verdicts.append({})
    forks.clear()
    encrypt_files([f for f in share if f.parent.name in ("docs", "finance")][:12])
    for i, processes in enumerate((0, 2)):
        repo = _reopen(_local_at(tmp_path / f"p{processes}"))
        opts = BackupOptions(paths=[str(root)], processes=processes, observer=Guard("enforce"), split_min_files=0)
        snap = Backup(repo, opts).run()
        verdicts[i] = snap.extra["guard"]  # type: ignore[assignment]
    assert len(forks) == 2
    one, split = verdicts
    assert split["verdict"] == one["verdict"] == "attack"
    assert split["rules"] == one["rules"] and split["rules"]["ransom-note"] == 1
    assert sorted(f["path"] for f in split["files"]) == sorted(f["path"] for f in one["files"])
    assert split["stats"] == one["stats"]


def _local_at(where: Path) -> Repository:
    return Repository.open(LocalStorage(str(where / "repo")), PASSWORD)


def test_no_process_to_fork_means_one_process_does_it_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    files = _tree(src)

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    repo = _local(tmp_path)
    job = Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2))
    snap = job.run()
    assert job.summary.files_new == files and job.summary.errors == [] and job.summary.warnings == []
    assert len(os.listdir(tmp_path / "repo" / "index")) == 1
    _restores_exactly(repo, snap, tmp_path / "target", src)


def test_a_small_tree_with_a_parent_is_backed_up_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    repo = _local(tmp_path)
    forks = _forks(monkeypatch)
    Backup(repo, BackupOptions(paths=[str(src)], processes=2, workers=2, split_min_files=files + 1)).run()
    assert len(forks) == 2  # a first backup: its size is not known
    forks.clear()
    job = Backup(_reopen(repo), BackupOptions(paths=[str(src)], processes=2, workers=2, split_min_files=files + 1))
    job.run()
    assert forks == [] and job.summary.files_unmodified == files
    Backup(_reopen(repo), BackupOptions(paths=[str(src)], processes=2, workers=2, split_min_files=files)).run()
    assert len(forks) == 2
