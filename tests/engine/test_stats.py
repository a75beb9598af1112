"""stats: restore size counts every file of every snapshot; unique data counts shared content once."""

from __future__ import annotations

import random
from pathlib import Path

from sauvegarde.engine.stats import compute_stats

from .repo_helpers import backup, memory_repository, reopen


def test_dedup_and_restore_size(tmp_path: Path) -> None:
    content = random.Random(9).randbytes(50_000)
    src = tmp_path / "d"
    src.mkdir()
    for i in range(4):  # four identical files
        (src / f"copy{i}.bin").write_bytes(content)
    (src / "text.txt").write_bytes(b"hello world\n" * 5000)  # compresses well
    repo = memory_repository()
    backup(repo, src)
    backup(repo, src)  # a second snapshot of the same data
    r = reopen(repo)
    st = compute_stats(r, r.snapshots())
    one = 4 * 50_000 + 60_000
    assert st.restore_size == 2 * one
    assert st.files == 10
    assert st.unique_size == 50_000 + 60_000
    assert st.dedup_ratio == (2 * one) / (50_000 + 60_000)
    assert st.compression_ratio > 1.0  # the text file shrinks
    assert st.stored_size <= st.repository_size
    single = compute_stats(r, r.snapshots()[:1])
    assert single.restore_size == one and single.unique_size == st.unique_size
