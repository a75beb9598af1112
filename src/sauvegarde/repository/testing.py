"""Helpers for tests: repositories on memory storage with a cheap KDF and small packs."""

from __future__ import annotations

from sauvegarde.chunking import ChunkerParams
from sauvegarde.crypto import KdfParams
from sauvegarde.repository.config import RepoConfig
from sauvegarde.repository.repo import Repository
from sauvegarde.storage.memory import MemoryStorage

PASSWORD = b"test password"
SMALL_CHUNKS = ChunkerParams(min_size=2048, avg_size=4096, max_size=16384, seed=12345)


def memory_repository(pack_size: int = 64 * 1024, chunker: ChunkerParams = SMALL_CHUNKS) -> Repository:
    """A fresh repository on memory storage with small chunks and packs, so tests exercise many of each."""
    config = RepoConfig.generate(chunker)
    config = RepoConfig(repo_id=config.repo_id, chunker=chunker, pack_size=pack_size)
    return Repository.init(MemoryStorage(), PASSWORD, KdfParams.cheap(), config)
