"""Reading trees: from remote storage whole tree packs are kept (a few, up to a byte budget) so a walk that goes
back and forth between packs reads each once; local storage reads each tree by its range and keeps nothing."""

from __future__ import annotations

import random

import pytest

from sauvegarde.repository import repo as repo_module
from sauvegarde.repository.blobs import BlobType
from sauvegarde.repository.repo import Repository
from sauvegarde.repository.testing import memory_repository
from sauvegarde.storage.memory import MemoryStorage

PASSWORD = b"test password"


class CountingStorage(MemoryStorage):
    """Memory storage that counts whole-object and ranged loads of packs."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = objects
        self.whole = 0
        self.ranged = 0

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if name.startswith("data/"):
            if offset == 0 and length is None:
                self.whole += 1
            else:
                self.ranged += 1
        return super().load(name, offset, length)


def trees_in_many_packs() -> tuple[dict[str, bytes], list[tuple[bytes, bytes]]]:
    """A repository whose tree blobs fill several packs; returns its objects and (tree ID, content) pairs."""
    repo = memory_repository(pack_size=4096)
    rng = random.Random(5)
    contents = [rng.randbytes(1500) for _ in range(24)]  # incompressible: two or three to a pack
    trees = [(repo.save_blob(BlobType.TREE, c)[0], c) for c in contents]
    repo.flush()
    storage = repo.storage
    assert isinstance(storage, MemoryStorage)
    return storage.objects, trees


def open_counting(objects: dict[str, bytes], remote: bool) -> tuple[Repository, CountingStorage]:
    storage = CountingStorage(objects)
    repo = Repository.open(storage, PASSWORD)
    repo.remote = remote
    return repo, storage


def packs_of(repo: Repository, trees: list[tuple[bytes, bytes]]) -> set[bytes]:
    packs = set()
    for tid, _ in trees:
        hit = repo.index.lookup(tid)
        assert hit is not None
        packs.add(hit[0])
    return packs


def back_and_forth(trees: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    half = len(trees) // 2
    return [t for pair in zip(trees[:half], trees[half:], strict=True) for t in pair] * 2


def test_remote_walk_reads_each_tree_pack_once(monkeypatch: pytest.MonkeyPatch) -> None:
    objects, trees = trees_in_many_packs()
    repo, storage = open_counting(objects, remote=True)
    packs = packs_of(repo, trees)
    assert len(packs) > 4
    monkeypatch.setattr(repo_module, "_TREE_CACHE_BYTES", 1 << 30)
    for tid, content in back_and_forth(trees):
        assert repo.load_blob(tid) == content
    assert storage.whole == len(packs) and storage.ranged == 0


def test_remote_tree_cache_keeps_to_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    objects, trees = trees_in_many_packs()
    repo, storage = open_counting(objects, remote=True)
    monkeypatch.setattr(repo_module, "_TREE_CACHE_BYTES", 1)  # one pack at a time: the walk reads packs again
    for tid, content in back_and_forth(trees):
        assert repo.load_blob(tid) == content
    assert storage.whole > len(packs_of(repo, trees))
    assert len(repo._tree_packs) == 1


def test_local_reads_trees_by_range() -> None:
    objects, trees = trees_in_many_packs()
    repo, storage = open_counting(objects, remote=False)
    for tid, content in back_and_forth(trees):
        assert repo.load_blob(tid) == content
    assert storage.whole == 0 and storage.ranged == len(back_and_forth(trees))
