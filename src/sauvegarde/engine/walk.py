"""Walking snapshot trees: load trees by ID, resolve paths, iterate entries with their full paths."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node, Repository, Tree
from sauvegarde.repository.tree import DIR

# The cache of decoded trees holds at most this many trees and this many entries (nodes, about 500 bytes each: some
# 8 MiB), whichever comes first. Bounded by trees alone it held 256 whole directories of hundreds of files each: `ls`
# of a 100k-file snapshot peaked at 162 MiB against 77 for 10k files, the cache being most of the difference. Bounded
# by entries alone it held more small trees than before (a tree restore of the bench's tree peaked higher).
CACHE_TREES = 256
CACHE_ENTRIES = 16384


class TreeLoader:
    """Loads and decodes tree blobs, keeping the most recent ones in a small cache (at most ``cache_trees`` trees
    and ``cache_entries`` entries in all; a larger tree is not kept)."""

    def __init__(self, repo: Repository, cache_entries: int = CACHE_ENTRIES, cache_trees: int = CACHE_TREES) -> None:
        self.repo = repo
        self._cache: OrderedDict[bytes, Tree] = OrderedDict()
        self._limit = cache_entries
        self._trees = cache_trees
        self._entries = 0  # in the cached trees
        self._lock = threading.Lock()

    def load(self, tree_id: bytes) -> Tree:
        with self._lock:
            hit = self._cache.get(tree_id)
            if hit is not None:
                self._cache.move_to_end(tree_id)
                return hit
        tree = Tree.decode(self.repo.load_blob(tree_id), f"tree {tree_id.hex()}")
        if len(tree.nodes) > self._limit:
            return tree
        with self._lock:
            if tree_id not in self._cache:  # (another thread may have loaded it meanwhile)
                self._cache[tree_id] = tree
                self._entries += len(tree.nodes)
                while self._entries > self._limit or len(self._cache) > self._trees:
                    self._entries -= len(self._cache.popitem(last=False)[1].nodes)
        return tree


def split_path(path: str) -> list[bytes]:
    import os

    return [os.fsencode(p) for p in path.split("/") if p]


def resolve(loader: TreeLoader, root: bytes, path: str) -> tuple[Node | None, bytes]:
    """The node at ``path`` inside the tree ``root`` (``None`` for the root itself) and the tree holding it."""
    tree_id = root
    node: Node | None = None
    for part in split_path(path):
        if node is not None:
            if node.type != DIR or node.subtree is None:
                raise SauvegardeError(f"{path}: not a directory in the snapshot")
            tree_id = node.subtree
        found = loader.load(tree_id).find(part)
        if found is None:
            raise SauvegardeError(f"{path}: no such file or directory in the snapshot")
        node = found
    return node, tree_id


def walk(loader: TreeLoader, tree_id: bytes, prefix: bytes = b"") -> Iterator[tuple[bytes, Node]]:
    """Every entry below ``tree_id`` in depth-first order (a directory before its content)."""
    for node in loader.load(tree_id).nodes:
        path = prefix + b"/" + node.name
        yield path, node
        if node.type == DIR and node.subtree is not None:
            yield from walk(loader, node.subtree, path)
