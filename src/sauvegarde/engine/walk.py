"""Walking snapshot trees: load trees by ID, resolve paths, iterate entries with their full paths."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node, Repository, Tree
from sauvegarde.repository.tree import DIR


class TreeLoader:
    """Loads and decodes tree blobs, keeping the most recent ones in a small cache."""

    def __init__(self, repo: Repository, cache_size: int = 256) -> None:
        self.repo = repo
        self._cache: OrderedDict[bytes, Tree] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def load(self, tree_id: bytes) -> Tree:
        with self._lock:
            hit = self._cache.get(tree_id)
            if hit is not None:
                self._cache.move_to_end(tree_id)
                return hit
        tree = Tree.decode(self.repo.load_blob(tree_id), f"tree {tree_id.hex()}")
        with self._lock:
            self._cache[tree_id] = tree
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
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
