"""restore writes batches of files in forked child processes on a local repository: the results (files,
errors, warnings, progress) come back to the parent, and a child that dies costs its own files, reported and
removed, never left half written."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sauvegarde.engine import restore as restore_module
from sauvegarde.engine.restore import Restore, RestoreOptions

from .repo_helpers import backup, make_files, memory_objects, memory_repository, pack_names, reopen
from .test_restore_batches import snapshot_of


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    make_files(src, seed=21, count=12, size=40_000)
    return src


def test_children_write_every_batch_and_report_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "_BATCH_FILES", 3)
    src = _source(tmp_path)
    repo = memory_repository()
    snap = backup(repo, src)
    forks: list[int] = []
    real_child = restore_module.Child

    def counted(*args: object) -> restore_module.Child:
        child = real_child(*args)  # type: ignore[arg-type]
        forks.append(child.pid)
        return child

    monkeypatch.setattr(restore_module, "Child", counted)
    target = tmp_path / "target"
    job = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2, processes=2))
    summary = job.run()
    assert summary.errors == [] and summary.files == 12 and summary.bytes == 12 * 40_000
    assert len(forks) == 4 and os.getpid() not in forks
    assert job.counters.files_done == 12 and job.counters.bytes_done == 12 * 40_000
    assert summary.first_byte_s is not None
    assert {k: v[0] for k, v in snapshot_of(target / str(src).lstrip("/")).items()} == {
        k: v[0] for k, v in snapshot_of(src).items()
    }


def test_errors_found_in_a_child_are_reported_by_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "_BATCH_FILES", 2)
    src = _source(tmp_path)
    repo = memory_repository(pack_size=64 * 1024)
    snap = backup(repo, src)
    repo = reopen(repo)
    data = [n for n in pack_names(repo) if any(e.type == 0 for e in repo.read_pack_header(bytes.fromhex(n[-64:])))]
    del memory_objects(repo)[data[0]]
    events: list[object] = []
    target = tmp_path / "target"
    summary = Restore(repo, snap, RestoreOptions(target=str(target), workers=2, processes=2), events.append).run()
    assert summary.errors and all("not restored" in e["error"] for e in summary.errors)
    assert [e.path for e in events] == [e["path"] for e in summary.errors]  # type: ignore[attr-defined]
    restored = snapshot_of(target / str(src).lstrip("/"))
    assert len(restored) == 12 - len(summary.errors) == summary.files


def test_a_child_that_dies_costs_its_files_reported_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(restore_module, "_BATCH_FILES", 4)
    src = _source(tmp_path)
    repo = memory_repository()
    snap = backup(repo, src)
    real_work = Restore._child_work
    died = tmp_path / "died"

    def dies_in_the_middle_of_the_first(self: Restore, files: list, send: object) -> object:  # type: ignore[type-arg]
        if not died.exists():  # the first child writes half a file, then is killed
            died.touch()
            os.write(os.open(files[0].out, os.O_WRONLY | os.O_CREAT, 0o600), b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        return real_work(self, files, send)  # type: ignore[arg-type]

    monkeypatch.setattr(Restore, "_child_work", dies_in_the_middle_of_the_first)
    target = tmp_path / "target"
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2, processes=1)).run()
    assert died.exists() and len(summary.errors) == 4
    assert all("killed by signal 9" in e["error"] and "file not restored" in e["error"] for e in summary.errors)
    restored = snapshot_of(target / str(src).lstrip("/"))
    source = snapshot_of(src)
    lost = {e["path"] for e in summary.errors}
    assert len(restored) == 8 == summary.files
    for name, (digest, _ino) in restored.items():
        assert source[name][0] == digest
    for path in lost:
        assert not (target / path.lstrip("/")).exists()
