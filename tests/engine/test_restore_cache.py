"""restore drops a big file from the page cache behind its writes (and only a big one), against the real kernel:
what the cache holds of the restored file is asked with fincore (mincore(2)), the bytes are compared in full."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from page_cache import HAVE_FINCORE, resident
from sauvegarde.engine import restore as restore_mod
from sauvegarde.engine.restore import Restore, RestoreOptions

from .repo_helpers import backup, memory_repository, reopen

pytestmark = pytest.mark.skipif(not HAVE_FINCORE, reason="needs util-linux fincore")

SIZE = 24 * 1024 * 1024


@pytest.fixture
def big_backup(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 24 MiB file of random bytes backed up: (its content, repository, snapshot, where it lands in a restore)."""
    src = tmp_path / "src"
    src.mkdir()
    data = random.Random(7).randbytes(SIZE)
    (src / "big.bin").write_bytes(data)
    repo = memory_repository()
    snap = backup(repo, src)
    return data, repo, snap, Path(str(src / "big.bin").lstrip("/"))


def restore_into(repo, snap, target: Path) -> None:  # type: ignore[no-untyped-def]
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2)).run()
    assert summary.errors == [] and summary.warnings == [] and summary.files == 1


def test_big_file_leaves_the_page_cache_as_it_is_written(
    big_backup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    data, repo, snap, rel = big_backup
    monkeypatch.setattr(restore_mod, "_DROP_BEHIND_FROM", 4 * 1024 * 1024)
    monkeypatch.setattr(restore_mod, "_DROP_BEHIND_EVERY", 1024 * 1024)
    target = tmp_path / "out"
    restore_into(repo, snap, target)
    out = target / rel
    # every 1 MiB written, what is on disk by then goes: only the last writes can still be cached (dirty, or
    # written out after the last advice); without the advice all 24 MiB are (see the next test)
    held = resident(out)
    assert held <= SIZE // 2, f"{held} of {SIZE} bytes still cached"
    assert out.read_bytes() == data


def test_smaller_file_stays_cached(big_backup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data, repo, snap, rel = big_backup
    assert SIZE < restore_mod._DROP_BEHIND_FROM
    target = tmp_path / "out"
    restore_into(repo, snap, target)
    out = target / rel
    assert resident(out) == os.path.getsize(out) == SIZE
    assert out.read_bytes() == data
