"""Shared helpers for engine tests: small trees backed up into memory repositories, and reopening them."""

from __future__ import annotations

import random
from pathlib import Path

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.repository import Repository, Snapshot, layout
from sauvegarde.repository.testing import PASSWORD, memory_repository
from sauvegarde.storage.memory import MemoryStorage


def make_files(root: Path, seed: int, count: int = 6, size: int = 30_000) -> None:
    """``count`` files of random content (several chunks each with the test chunker) under ``root``."""
    rng = random.Random(seed)
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        where = root / "sub" if i % 2 else root
        (where / f"f{seed}-{i}.bin").write_bytes(rng.randbytes(size))


def backup(repo: Repository, path: Path, host: str = "box") -> Snapshot:
    return Backup(repo, BackupOptions(paths=[str(path)], hostname=host, workers=2)).run()


def reopen(repo: Repository, load_index: bool = True) -> Repository:
    return Repository.open(repo.storage, PASSWORD, load_index=load_index)


def memory_objects(repo: Repository) -> dict[str, bytes]:
    storage = repo.storage
    assert isinstance(storage, MemoryStorage)
    return storage.objects


def pack_names(repo: Repository) -> list[str]:
    return sorted(n for n in memory_objects(repo) if n.startswith(layout.DATA))


__all__ = ["backup", "make_files", "memory_objects", "memory_repository", "pack_names", "reopen"]
