"""TreeLoader's cache: bounded by the entries it holds, not by the number of trees."""

from __future__ import annotations

from sauvegarde.engine.walk import TreeLoader, walk
from sauvegarde.repository import Node, Repository, Tree
from sauvegarde.repository.blobs import BlobType

from .repo_helpers import memory_repository


def _tree(repo: Repository, entries: int, tag: bytes) -> bytes:
    nodes = [Node(name=tag + b"%04d" % k, type="file", size=k) for k in range(entries)]
    return repo.save_blob(BlobType.TREE, Tree(nodes).encode())[0]


def _counting(repo: Repository) -> list[bytes]:
    loads: list[bytes] = []
    real = repo.load_blob

    def load_blob(blob_id: bytes) -> bytes:
        loads.append(blob_id)
        return real(blob_id)

    repo.load_blob = load_blob  # type: ignore[method-assign]
    return loads


def test_the_cache_keeps_the_latest_trees_up_to_its_entries() -> None:
    repo = memory_repository()
    trees = [_tree(repo, 40, b"t%d-" % i) for i in range(5)]  # 200 entries in all
    repo.flush()
    loads = _counting(repo)
    loader = TreeLoader(repo, cache_entries=100)
    for t in trees:
        assert len(loader.load(t).nodes) == 40
    del loads[:]
    for t in trees[-2:]:  # the two latest fit (80 entries): no load
        loader.load(t)
    assert loads == []
    loader.load(trees[0])  # pushed out by the later ones: loaded again
    assert loads == [trees[0]]


def test_the_cache_keeps_no_more_trees_than_its_count_however_small() -> None:
    repo = memory_repository()
    trees = [_tree(repo, 1, b"t%d-" % i) for i in range(6)]
    repo.flush()
    loads = _counting(repo)
    loader = TreeLoader(repo, cache_entries=100, cache_trees=4)
    for t in trees:
        loader.load(t)
    del loads[:]
    for t in trees[-4:]:
        loader.load(t)
    assert loads == []
    loader.load(trees[0])
    assert loads == [trees[0]]


def test_a_tree_larger_than_the_cache_is_not_kept_and_pushes_nothing_out() -> None:
    repo = memory_repository()
    small, big = _tree(repo, 10, b"s"), _tree(repo, 500, b"b")
    repo.flush()
    loads = _counting(repo)
    loader = TreeLoader(repo, cache_entries=100)
    loader.load(small)
    assert len(loader.load(big).nodes) == 500
    loader.load(small)
    loader.load(big)
    assert loads == [small, big, big]


def test_a_walk_sees_every_entry_whatever_the_cache() -> None:
    repo = memory_repository()
    subs = [Node(name=b"d%d" % i, type="dir", subtree=_tree(repo, 30, b"f")) for i in range(4)]
    root = repo.save_blob(BlobType.TREE, Tree(subs).encode())[0]
    repo.flush()
    paths = [p for p, _ in walk(TreeLoader(repo, cache_entries=10), root)]
    assert len(paths) == 4 + 4 * 30 and paths[:2] == [b"/d0", b"/d0/f0000"]
